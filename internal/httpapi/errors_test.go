package httpapi_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestErrorBodiesBounded sends requests whose bad part is up to most of
// the body limit long: each error names the field, quotes at most a short
// prefix of the value, and the whole error body stays small.
func TestErrorBodiesBounded(t *testing.T) {
	t.Parallel()
	g := newGateway(t) // 1 MiB body limit
	digits := strings.Repeat("7", 900_000)
	key := strings.Repeat("k", 500_000)
	for _, tc := range []struct {
		name, ct, url string
		body          []byte
		status        int
		field         string
	}{
		{"900 KB number out of range", "application/json", tracesURL(g, canvas),
			[]byte(`{"rootTLID":"1","input":[["x",` + digits + `]]}`), 400, "input[0][1]"},
		{"500 KB unknown key with a bad value", "application/json", tracesURL(g, canvas),
			[]byte(`{"rootTLID":"1","` + key + `":[1,}`), 400, key[:64] + "…[1]"},
		{"500 KB tlid", "application/json", tracesURL(g, canvas),
			[]byte(`{"rootTLID":"` + digits[:500_000] + `"}`), 400, "rootTLID"},
		{"8 KB content type", "application/json; x=" + strings.Repeat("y", 8000) + "; =", tracesURL(g, canvas),
			[]byte(`{"rootTLID":"1"}`), 415, ""},
		{"30 KB unknown path", "", g.URL + "/v1/" + strings.Repeat("p", 30_000), nil, 404, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := "POST"
			if tc.body == nil {
				method = "GET"
			}
			status, _, b := call(t, method, tc.url, tc.ct, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d; body %.300s", status, tc.status, b)
			}
			if len(b) > 1500 {
				t.Errorf("error body of %d bytes, want at most 1500: %.300s…", len(b), b)
			}
			var e struct {
				Error struct{ Code, Message, Field string }
			}
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("error body %.300s: %v", b, err)
			}
			if e.Error.Field != tc.field {
				t.Errorf("field %.100q, want %.100q", e.Error.Field, tc.field)
			}
			if bytes.Contains(b, []byte(strings.Repeat("7", 100))) || bytes.Contains(b, []byte(strings.Repeat("k", 100))) ||
				bytes.Contains(b, []byte(strings.Repeat("y", 100))) || bytes.Contains(b, []byte(strings.Repeat("p", 200))) {
				t.Errorf("error body echoes a long run of the input: %.300s", b)
			}
		})
	}
	if status, _, _ := call(t, "GET", g.URL+"/v1/canvases/"+canvas+"/toplevels/1/traces", "", nil); status != http.StatusOK {
		t.Errorf("list after the bad requests: status %d", status)
	}
}
