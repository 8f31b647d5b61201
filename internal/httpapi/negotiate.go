package httpapi

import (
	"bytes"
	"encoding/json"
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

// readBody reads a request body of at most limit bytes and says whether it
// is JSON (else msgpack). An unsupported Content-Type is 415; a body over
// the limit is 413 naming the limit.
func readBody(r *http.Request, limit int64) (body []byte, isJSON bool, err error) {
	mt, _, perr := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch {
	case perr != nil && r.Header.Get("Content-Type") != "":
		return nil, false, fmt.Errorf("Content-Type %s: %w", traces.Quote(r.Header.Get("Content-Type")), errMediaType)
	case mt == ctJSON:
		isJSON = true
	case mt == ctMsgpack || mt == "application/x-msgpack":
	default:
		return nil, false, fmt.Errorf("Content-Type must be %s or %s: %w", ctMsgpack, ctJSON, errMediaType)
	}
	if r.ContentLength > limit {
		return nil, false, traces.TooLarge("body", limit)
	}
	// Trust the declared length only so far: a client declaring 16 MiB and
	// sending nothing must not reserve 16 MiB per connection.
	size := 512
	if r.ContentLength > 0 {
		size = int(min(r.ContentLength, 64<<10))
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+1))
	n, err := buf.ReadFrom(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, false, fmt.Errorf("read body: %w", traces.Invalid("body", "could not be read: %v", err))
	}
	if n > limit {
		return nil, false, traces.TooLarge("body", limit)
	}
	return buf.Bytes(), isJSON, nil
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
