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

// TestInvalidUTF8Refused: a string that is not valid UTF-8, in JSON or in
// msgpack, at any depth of a value, is a 400 naming the field, and nothing
// is stored (it used to be stored with U+FFFD in its place).
func TestInvalidUTF8Refused(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	mp := func(value []byte) []byte { // {"rootTLID":1,"input":[["x",value]]}
		return append([]byte("\x82\xa8rootTLID\x01\xa5input\x91\x92\xa1x"), value...)
	}
	for _, tc := range []struct {
		name, ct string
		body     []byte
		field    string
	}{
		{"json string value", "application/json", []byte("{\"rootTLID\":\"1\",\"input\":[[\"x\",\"a\xffb\"]]}"), "input[0][1]"},
		{"json nested key", "application/json", []byte("{\"rootTLID\":\"1\",\"input\":[[\"x\",{\"ok\":[{\"\xc3\":1}]}]]}"), "input[0][1]"},
		{"json lone surrogate", "application/json", []byte(`{"rootTLID":"1","functionResults":[{"tlid":"1","exprID":"1","fnName":"f","value":"\udc00"}]}`), "functionResults[0].value"},
		{"msgpack string value", "application/msgpack", mp([]byte("\xa3a\xffb")), "input[0][1]"},
		{"msgpack nested map key", "application/msgpack", mp([]byte("\x81\xa2ok\x91\x81\xa1\xc3\x01")), "input[0][1]"},
		{"msgpack input name", "application/msgpack", []byte("\x82\xa8rootTLID\x01\xa5input\x91\x92\xa1\xff\x01"), "input[0][0]"},
	} {
		status, _, b := call(t, "POST", tracesURL(g, canvas), tc.ct, tc.body)
		code, field := errorOf(t, b)
		if status != http.StatusBadRequest || code != "invalid_argument" || field != tc.field || !bytes.Contains(b, []byte("UTF-8")) && !bytes.Contains(b, []byte("surrogate")) {
			t.Errorf("%s: %d %s, want 400 invalid_argument naming %s and why", tc.name, status, b, tc.field)
		}
	}
	// bin is bytes: any bytes pass, and come back as they went in.
	status, _, b := call(t, "POST", tracesURL(g, canvas), "application/msgpack", mp([]byte("\xc4\x03a\xffb")))
	if status != http.StatusCreated {
		t.Fatalf("bin with invalid UTF-8: %d %s, want 201", status, b)
	}
	var saved struct{ TraceID string }
	if err := json.Unmarshal(b, &saved); err != nil {
		t.Fatal(err)
	}
	if ids := listIDs(t, g, "1"); len(ids) != 1 || ids[0] != saved.TraceID {
		t.Errorf("toplevel 1 lists %v, want only the bin trace %s", ids, saved.TraceID)
	}
}

// listIDs lists the trace IDs of a toplevel of canvas.
func listIDs(t *testing.T, g *gateway, tlid string) []string {
	t.Helper()
	status, _, b := call(t, "GET", g.URL+"/v1/canvases/"+canvas+"/toplevels/"+tlid+"/traces?limit=100", "", nil)
	if status != http.StatusOK {
		t.Fatalf("list: %d %s", status, b)
	}
	var r struct{ Traces []struct{ TraceID string } }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, x := range r.Traces {
		ids = append(ids, x.TraceID)
	}
	return ids
}
