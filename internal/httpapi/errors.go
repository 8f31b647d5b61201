package httpapi

import (
	"errors"
	"net/http"

	"github.com/tracegw/tracegw/internal/traces"
)

// Errors that only exist at the HTTP layer.
var (
	errUnauthenticated = errors.New("unauthenticated")
	errPermission      = errors.New("permission denied")
	errMediaType       = errors.New("unsupported media type")
)

// apiError is the API's JSON error body (docs/api.md, "Errors").
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

// classify is the one error→status table. The message is the outermost
// traces.PublicError's (what the caller named and what to do), or a fixed
// one per code: never the error's text, which may hold keys or SQL. A 5xx
// message says nothing more; the request id ties it to the log.
func classify(err error) (status int, code, message, field string) {
	var fe *traces.FieldError
	if errors.As(err, &fe) {
		if fe.Limit > 0 {
			return http.StatusRequestEntityTooLarge, "payload_too_large", fe.Error(), fe.Field
		}
		return http.StatusBadRequest, "invalid_argument", fe.Error(), fe.Field
	}
	switch {
	case errors.Is(err, traces.ErrInvalid):
		status, code, message = http.StatusBadRequest, "invalid_argument", "invalid argument"
	case errors.Is(err, errUnauthenticated):
		status, code, message = http.StatusUnauthorized, "unauthenticated", "a valid bearer token is required"
	case errors.Is(err, errPermission):
		status, code, message = http.StatusForbidden, "permission_denied", "the token does not allow this request"
	case errors.Is(err, traces.ErrNotFound):
		status, code, message = http.StatusNotFound, "not_found", "not found"
	case errors.Is(err, traces.ErrConflict):
		status, code, message = http.StatusConflict, "already_exists", "already exists"
	case errors.Is(err, traces.ErrHeld):
		return http.StatusConflict, "failed_precondition", "the trace is held: release the hold first (DELETE …/hold) or add a layer with POST …/function-results", ""
	case errors.Is(err, traces.ErrPreconditionFailed):
		status, code, message = http.StatusPreconditionFailed, "failed_precondition", "the resource changed: read it again and retry"
	case errors.Is(err, errMediaType):
		status, code, message = http.StatusUnsupportedMediaType, "unsupported_media_type", "unsupported media type"
	case errors.Is(err, traces.ErrExhausted):
		status, code, message = http.StatusTooManyRequests, "resource_exhausted", "a limit was reached"
	case errors.Is(err, errBusy):
		return http.StatusServiceUnavailable, "unavailable", "the server holds as many request bodies as it may; retry shortly", ""
	case errors.Is(err, traces.ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable", "a backend is unavailable; retry with backoff", ""
	default:
		return http.StatusInternalServerError, "internal", "internal error", ""
	}
	var pe *traces.PublicError
	if errors.As(err, &pe) {
		message = pe.Message
	}
	return status, code, message, ""
}

// writeError answers err as the API's JSON error and logs server faults.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	status, code, msg, field := classify(err)
	switch {
	case errors.Is(err, errBusy):
		// Load shedding, not a fault: say when to come back.
		w.Header().Set("Retry-After", "1")
		logger(r.Context(), s.log).Warn("request refused", "status", status, "err", err)
	case status >= 500:
		logger(r.Context(), s.log).Error("request failed", "status", status, "err", err)
	}
	var body apiError
	// The sources quote callers' values in bounded form (traces.Quote);
	// this is the last resort for any that does not.
	body.Error.Code, body.Error.Message, body.Error.Field = code, traces.Cut(msg, maxMessage), traces.Cut(field, maxFieldName)
	writeJSON(w, status, body)
}

// Bounds of an error body's message and field, in bytes.
const (
	maxMessage   = 1024
	maxFieldName = 256
)
