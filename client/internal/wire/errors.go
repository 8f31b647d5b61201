package wire

import "fmt"

// FieldError is a malformed value: the field it was read for and why.
// Limit is set when a size limit was exceeded.
type FieldError struct {
	Field, Reason string
	Limit         int64
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Invalid returns a *FieldError for field with a formatted reason.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// TooLarge returns a *FieldError for a limit that was exceeded.
func TooLarge(field string, limit int64) error {
	return &FieldError{Field: field, Reason: fmt.Sprintf("exceeds the limit of %d", limit), Limit: limit}
}
