package httpapi

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tracegw/tracegw/internal/traces"
)

const (
	ctJSON    = "application/json"
	ctMsgpack = "application/msgpack"
)

// received is a request body as read: body is what the route decodes
// (inflated when it came gzip-compressed), gzip the compressed bytes as
// they arrived (nil when it was not compressed).
type received struct {
	body, gzip []byte
	json       bool
}

// readBody reads the request body as readReceived does and returns what
// the route decodes and whether it is JSON (else msgpack).
func (s *Server) readBody(r *http.Request) (body []byte, isJSON bool, err error) {
	in, err := s.readReceived(r)
	return in.body, in.json, err
}

// readReceived reads the request body, of at most s.limits.MaxBody bytes
// as sent and, with Content-Encoding: gzip, once inflated (one gzip
// member). An unsupported Content-Type or Content-Encoding is 415; a body
// over the limit is 413 naming the limit. Before reading, it reserves the
// body's bytes in the server's in-flight budget (see inflight.go): a body
// of known length at once, in full, and a chunked or inflated body as its
// buffer grows; no room within the wait wraps errBusy (503). The
// reservation lasts until the handler returns.
func (s *Server) readReceived(r *http.Request) (received, error) {
	var in received
	gz := false
	switch ce := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); ce {
	case "", "identity":
	case "gzip":
		gz = true
	default:
		return in, traces.Public(errMediaType, "Content-Encoding must be gzip or none, not %s", traces.Quote(ce))
	}
	raw, isJSON, err := s.readRaw(r)
	if err != nil {
		return in, err
	}
	in.body, in.json = raw, isJSON
	if gz {
		res := s.reservation(r)
		in.gzip = raw
		in.body, err = traces.Inflate(raw, s.limits.MaxBody, "body", func(n int64) error { return res.grow(r.Context(), n) })
		if err != nil {
			return received{}, err
		}
	}
	return in, nil
}

// reservation is r's share of the body budget.
func (s *Server) reservation(r *http.Request) *reservation {
	if st, ok := r.Context().Value(stateKey{}).(*reqState); ok {
		return &st.body
	}
	return &reservation{b: s.budget}
}

// readRaw reads the body as sent: of at most s.limits.MaxBody bytes, with
// a supported Content-Type, reserved in the budget.
func (s *Server) readRaw(r *http.Request) (body []byte, isJSON bool, err error) {
	mt, _, perr := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case perr != nil && r.Header.Get("Content-Type") != "":
		return nil, false, traces.Public(errMediaType, "Content-Type %s", traces.Quote(r.Header.Get("Content-Type")))
	case mt == ctJSON:
		isJSON = true
	case mt == ctMsgpack || mt == "application/x-msgpack":
	default:
		return nil, false, traces.Public(errMediaType, "Content-Type must be %s or %s", ctMsgpack, ctJSON)
	}
	limit := s.limits.MaxBody
	if r.ContentLength > limit {
		return nil, false, traces.TooLarge("body", limit)
	}
	res := s.reservation(r)
	if r.ContentLength >= 0 {
		// Reserved, so allocated at once: one buffer of the exact size,
		// never a growing one and its copies.
		if err := res.grow(r.Context(), r.ContentLength); err != nil {
			return nil, false, err
		}
		body = make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, body); err != nil {
			return nil, false, fmt.Errorf("read body: %w", traces.Invalid("body", "could not be read: %v", err))
		}
		return body, isJSON, nil
	}
	for {
		if len(body) == cap(body) {
			if int64(len(body)) > limit {
				return nil, false, traces.TooLarge("body", limit)
			}
			n := min(max(2*int64(cap(body)), chunkReserve), limit+1)
			if err := res.grow(r.Context(), n-int64(cap(body))); err != nil {
				return nil, false, err
			}
			body = append(make([]byte, 0, n), body...)
		}
		n, err := r.Body.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, false, fmt.Errorf("read body: %w", traces.Invalid("body", "could not be read: %v", err))
		}
	}
	if int64(len(body)) > limit {
		return nil, false, traces.TooLarge("body", limit)
	}
	return body, isJSON, nil
}

// wantsMsgpack reports whether the client asked for msgpack responses.
func wantsMsgpack(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, _ := mime.ParseMediaType(strings.TrimSpace(part))
		if mt == ctMsgpack || mt == "application/x-msgpack" {
			return true
		}
	}
	return false
}

// respond encodes v as msgpack or JSON, as the client asked.
func respond(w http.ResponseWriter, r *http.Request, status int, v any) {
	if wantsMsgpack(r) {
		b, err := msgpack.Marshal(v)
		if err != nil {
			writeJSON(w, http.StatusInternalServerError, map[string]any{"error": map[string]string{"code": "internal", "message": "internal error"}})
			return
		}
		w.Header().Set("Content-Type", ctMsgpack)
		w.WriteHeader(status)
		_, _ = w.Write(b)
		return
	}
	writeJSON(w, status, v)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", ctJSON)
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// rawResponse writes pre-encoded bytes.
func rawResponse(w http.ResponseWriter, status int, contentType string, b []byte) {
	w.Header().Set("Content-Type", contentType)
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
