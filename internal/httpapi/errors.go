package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/tracegw/tracegw/internal/traces"
)

// Errors that only exist at the HTTP layer.
var (
	errUnauthenticated = errors.New("unauthenticated")
	errPermission      = errors.New("permission denied")
	errMediaType       = errors.New("unsupported media type")
)

// apiError is the JSON error body of API.md.
type apiError struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	} `json:"error"`
}

// classify is the one error→status table. A 5xx message never carries the
// error text (it may hold keys or SQL); the request id ties it to the log.
func classify(err error) (status int, code, message, field string) {
	var fe *traces.FieldError
	switch {
	case errors.As(err, &fe):
		if fe.Limit > 0 {
			return http.StatusRequestEntityTooLarge, "payload_too_large", fe.Error(), fe.Field
		}
		return http.StatusBadRequest, "invalid_argument", fe.Error(), fe.Field
	case errors.Is(err, traces.ErrInvalid):
		return http.StatusBadRequest, "invalid_argument", upTo(err, traces.ErrInvalid), ""
	case errors.Is(err, errUnauthenticated):
		return http.StatusUnauthorized, "unauthenticated", upTo(err, errUnauthenticated), ""
	case errors.Is(err, errPermission):
		return http.StatusForbidden, "permission_denied", upTo(err, errPermission), ""
	case errors.Is(err, traces.ErrNotFound):
		return http.StatusNotFound, "not_found", upTo(err, traces.ErrNotFound), ""
	case errors.Is(err, traces.ErrConflict):
		return http.StatusConflict, "already_exists", upTo(err, traces.ErrConflict), ""
	case errors.Is(err, traces.ErrHeld):
		return http.StatusConflict, "failed_precondition", "the trace is held: release the hold first (DELETE …/hold) or add a layer with POST …/function-results", ""
	case errors.Is(err, traces.ErrPreconditionFailed):
		return http.StatusPreconditionFailed, "failed_precondition", upTo(err, traces.ErrPreconditionFailed), ""
	case errors.Is(err, errMediaType):
		return http.StatusUnsupportedMediaType, "unsupported_media_type", upTo(err, errMediaType), ""
	case errors.Is(err, traces.ErrExhausted):
		return http.StatusTooManyRequests, "resource_exhausted", upTo(err, traces.ErrExhausted), ""
	case errors.Is(err, errBusy):
		return http.StatusServiceUnavailable, "unavailable", "the server holds as many request bodies as it may; retry shortly", ""
	case errors.Is(err, traces.ErrUnavailable):
		return http.StatusServiceUnavailable, "unavailable", "a backend is unavailable; retry with backoff", ""
	}
	return http.StatusInternalServerError, "internal", "internal error", ""
}

// upTo is err's message up to its sentinel: our own steps ("get <trace>:
// not found") without the backend error wrapped after it (storage or pgx
// text, which is nobody's business but the log's).
func upTo(err, sentinel error) string {
	msg := err.Error()
	if i := strings.Index(msg, sentinel.Error()); i >= 0 {
		return msg[:i+len(sentinel.Error())]
	}
	return msg
}

// writeError answers err as API.md's JSON error and logs server faults.
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
