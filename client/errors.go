package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors, one per error code of the gateway's error model
// (docs/api.md, "Errors"). Match them with errors.Is.
var (
	ErrInvalid         = errors.New("invalid argument")      // 400 invalid_argument, 415 unsupported_media_type
	ErrUnauthenticated = errors.New("unauthenticated")       // 401 unauthenticated
	ErrPermission      = errors.New("permission denied")     // 403 permission_denied
	ErrNotFound        = errors.New("not found")             // 404 not_found
	ErrConflict        = errors.New("already exists")        // 409 already_exists
	ErrPrecondition    = errors.New("failed precondition")   // 412 (or 409 for a held trace) failed_precondition
	ErrTooLarge        = errors.New("payload too large")     // 413 payload_too_large
	ErrExhausted       = errors.New("resource exhausted")    // 429 resource_exhausted
	ErrUnavailable     = errors.New("service unavailable")   // 503 unavailable, and network errors after the last retry
	ErrInternal        = errors.New("internal server error") // 500 internal and other 5xx
)

// APIError is an error answer of the gateway: its HTTP status, the machine
// code, message and field of its JSON error, and the X-Request-Id that ties
// it to the gateway's log line. errors.Is matches it against the sentinel of
// its code (or, for a body that is not the gateway's error model, of its
// status).
type APIError struct {
	Status    int
	Code      string
	Message   string
	Field     string
	RequestID string
}

func (e *APIError) Error() string {
	s := fmt.Sprintf("tracegw: %d %s: %s", e.Status, e.Code, e.Message)
	if e.Field != "" {
		s += " (field " + e.Field + ")"
	}
	if e.RequestID != "" {
		s += " [request " + e.RequestID + "]"
	}
	return s
}

// Is reports whether target is the sentinel of e's code.
func (e *APIError) Is(target error) bool { return e.sentinel() == target }

func (e *APIError) sentinel() error {
	switch e.Code {
	case "invalid_argument", "unsupported_media_type":
		return ErrInvalid
	case "unauthenticated":
		return ErrUnauthenticated
	case "permission_denied":
		return ErrPermission
	case "not_found":
		return ErrNotFound
	case "already_exists":
		return ErrConflict
	case "failed_precondition":
		return ErrPrecondition
	case "payload_too_large":
		return ErrTooLarge
	case "resource_exhausted":
		return ErrExhausted
	case "unavailable":
		return ErrUnavailable
	case "internal":
		return ErrInternal
	}
	switch s := e.Status; {
	case s == http.StatusBadRequest || s == http.StatusUnsupportedMediaType:
		return ErrInvalid
	case s == http.StatusUnauthorized:
		return ErrUnauthenticated
	case s == http.StatusForbidden:
		return ErrPermission
	case s == http.StatusNotFound:
		return ErrNotFound
	case s == http.StatusConflict:
		return ErrConflict
	case s == http.StatusPreconditionFailed:
		return ErrPrecondition
	case s == http.StatusRequestEntityTooLarge:
		return ErrTooLarge
	case s == http.StatusTooManyRequests:
		return ErrExhausted
	case s == http.StatusServiceUnavailable || s == http.StatusBadGateway || s == http.StatusGatewayTimeout:
		return ErrUnavailable
	case s >= 500:
		return ErrInternal
	}
	return nil
}

// parseAPIError builds the *APIError of a non-2xx answer. A body that is not
// the gateway's error model ({"error":{"code","message","field"}}) keeps the
// status and a short excerpt as message.
func parseAPIError(status int, h http.Header, body []byte) *APIError {
	e := &APIError{Status: status, RequestID: h.Get("X-Request-Id")}
	var b struct {
		Error struct {
			Code    string `json:"code"`
			Message string `json:"message"`
			Field   string `json:"field"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &b) == nil && b.Error.Code != "" {
		e.Code, e.Message, e.Field = b.Error.Code, b.Error.Message, b.Error.Field
		return e
	}
	e.Message = http.StatusText(status)
	if len(body) > 0 {
		const max = 200
		if len(body) > max {
			body = body[:max]
		}
		e.Message += ": " + string(body)
	}
	return e
}
