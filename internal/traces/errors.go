package traces

import (
	"errors"
	"fmt"
)

// The one error vocabulary every package wraps. httpapi maps each to a status.
var (
	ErrInvalid            = errors.New("invalid argument")    // 400 invalid_argument
	ErrNotFound           = errors.New("not found")           // 404 not_found
	ErrConflict           = errors.New("already exists")      // 409 already_exists
	ErrPreconditionFailed = errors.New("precondition failed") // 412 failed_precondition
	ErrHeld               = errors.New("held")                // 409 failed_precondition: the object is under a hold
	ErrExhausted          = errors.New("resource exhausted")  // 429 resource_exhausted
	ErrUnavailable        = errors.New("backend unavailable") // 503 unavailable
)

// FieldError names the bad field (API.md's "field"); it unwraps to ErrInvalid.
// Limit is set when a size limit was exceeded.
type FieldError struct {
	Field, Reason string
	Limit         int64
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Invalid returns a *FieldError for field with a formatted reason.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// TooLarge returns a *FieldError for a limit that was exceeded.
func TooLarge(field string, limit int64) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf("exceeds the limit of %d", limit), Limit: limit}
}
