package traces

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
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

// FieldError names the bad field (the "field" of the API's JSON error); it
// unwraps to ErrInvalid.
// Limit is set when a size limit was exceeded.
type FieldError struct {
	Field, Reason string
	Limit         int64
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Bounds on what an error echoes of a caller's input: a value is quoted up
// to MaxQuoted bytes (Quote, Cut), and a FieldError's reason and field never
// exceed maxReason and maxField bytes whatever was formatted into them, so
// a 15 MB number never comes back in a 15 MB error.
const (
	MaxQuoted = 64
	maxReason = 512
	maxField  = 256
)

// Invalid returns a *FieldError for field with a formatted reason. Values
// of the caller's should go in through Quote or Cut; the reason and field
// are cut to a few hundred bytes in any case.
func Invalid(field, format string, args ...any) error {
	return &FieldError{Field: Cut(field, maxField), Reason: Cut(fmt.Sprintf(format, args...), maxReason)}
}

// Cut returns s if it has at most n bytes, else its first n bytes or fewer,
// ending on a UTF-8 boundary, followed by "…".
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && i > n-utf8.UTFMax && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// cutBytes is Cut for a byte slice, copying only what it keeps.
func cutBytes(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return Cut(string(b[:n+1]), n)
}

// Quote renders a caller's value for an error message: Go-quoted, at most
// MaxQuoted bytes of it, with an ellipsis after the quote when cut.
func Quote(s string) string {
	if len(s) <= MaxQuoted {
		return strconv.Quote(s)
	}
	return strconv.Quote(strings.TrimSuffix(Cut(s, MaxQuoted), "…")) + "…"
}

// TooLarge returns a *FieldError for a limit that was exceeded.
func TooLarge(field string, limit int64) error {
	return &FieldError{Field: Cut(field, maxField), Reason: fmt.Sprintf("exceeds the limit of %d", limit), Limit: limit}
}

// PublicError is an error whose Message is fit for the caller: it names what
// the caller named (a trace, a job, a canvas) and what to do next, never
// object keys, SQL or a chain of steps. httpapi answers Message; logs get
// Error(), the whole chain.
type PublicError struct {
	Message string
	Err     error // the cause; its chain holds the sentinel
}

func (e *PublicError) Error() string { return e.Message + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *PublicError) Unwrap() error { return e.Err }

// Public wraps cause with a public message.
func Public(cause error, format string, args ...any) error {
	return &PublicError{Message: fmt.Sprintf(format, args...), Err: cause}
}

// PublicIf wraps err with a public message if it wraps sentinel, and
// returns it unchanged otherwise (nil stays nil).
func PublicIf(err, sentinel error, format string, args ...any) error {
	if err == nil || !errors.Is(err, sentinel) {
		return err
	}
	return Public(err, format, args...)
}
