package httpapi_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

type unmatchedItem struct {
	Module, Path, Modifier, Timestamp, TraceID string
}

func (g *execGateway) listUnmatched(t *testing.T) []unmatchedItem {
	t.Helper()
	status, _, b := call(t, "GET", g.canvasURL()+"/unmatched-requests", "", nil)
	if status != http.StatusOK {
		t.Fatalf("list unmatched: %d %s", status, b)
	}
	var r struct{ Unmatched []unmatchedItem }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.Unmatched
}

func (g *execGateway) postUnmatched(t *testing.T, body string) string {
	t.Helper()
	status, _, b := call(t, "POST", g.canvasURL()+"/unmatched-requests", "application/json", []byte(body))
	var r struct{ TraceID string }
	if err := json.Unmarshal(b, &r); err != nil || status != http.StatusCreated || r.TraceID == "" {
		t.Fatalf("post unmatched: %d %s", status, b)
	}
	return r.TraceID
}

func TestUnmatchedHTTP(t *testing.T) {
	t.Parallel()
	g := newExecGateway(t)
	base := g.canvasURL() + "/unmatched-requests"
	g.postUnmatched(t, `{"module":"HTTP","path":"/users/1","modifier":"GET","input":[["request",{"body":"a"}]]}`)
	if _, err := g.Emu.E.Advance(t.Context(), time.Second); err != nil {
		t.Fatal(err)
	}
	newest := g.postUnmatched(t, `{"module":"HTTP","path":"/users/1","modifier":"GET","input":[["request",{"body":"b"}]]}`)
	other := g.postUnmatched(t, `{"module":"HTTP","path":"/x","modifier":"POST","input":[["request",{"body":"c"}]]}`)

	list := g.listUnmatched(t)
	if len(list) != 2 {
		t.Fatalf("listed %v, want one per route", list)
	}
	byPath := map[string]unmatchedItem{}
	for _, it := range list {
		byPath[it.Path] = it
		if _, err := time.Parse(time.RFC3339, it.Timestamp); err != nil || !strings.HasSuffix(it.Timestamp, "Z") {
			t.Errorf("timestamp %q is not RFC 3339 UTC", it.Timestamp)
		}
	}
	if byPath["/users/1"].TraceID != newest || byPath["/users/1"].Module != "HTTP" || byPath["/users/1"].Modifier != "GET" {
		t.Errorf("/users/1 = %+v, want the newest request %s", byPath["/users/1"], newest)
	}

	q := url.Values{"module": {"HTTP"}, "path": {"/users/1"}, "modifier": {"GET"}}
	if status, _, b := call(t, "DELETE", base+"?"+q.Encode(), "", nil); status != http.StatusNoContent {
		t.Fatalf("dismiss: %d %s", status, b)
	}
	if list := g.listUnmatched(t); len(list) != 1 || list[0].TraceID != other {
		t.Errorf("after dismiss: %v, want only %s", list, other)
	}

	status, hdr, b := call(t, "POST", base+"/"+other+"/promote", "application/json", []byte(`{"rootTLID":"4242"}`))
	var promoted struct{ TraceID string }
	if err := json.Unmarshal(b, &promoted); err != nil || status != http.StatusCreated || promoted.TraceID == other {
		t.Fatalf("promote: %d %s", status, b)
	}
	if !strings.HasSuffix(hdr.Get("Location"), "/traces/"+promoted.TraceID) {
		t.Errorf("Location = %q", hdr.Get("Location"))
	}
	status, _, b = call(t, "GET", g.canvasURL()+"/toplevels/4242/traces", "", nil)
	if status != http.StatusOK || !strings.Contains(string(b), promoted.TraceID) {
		t.Errorf("traces of the new handler: %d %s", status, b)
	}
	_, doc := g.getDoc(t, promoted.TraceID)
	if in, _ := json.Marshal(doc["input"]); string(in) != `[["request",{"body":"c"}]]` {
		t.Errorf("promoted input = %s", in)
	}
	if list := g.listUnmatched(t); len(list) != 0 {
		t.Errorf("after promote: %v, want none", list)
	}

	unknown := traces.NewTraceID(time.Now()).String()
	for _, tc := range []struct {
		name, method, url, body string
		status                  int
		code, field             string
	}{
		{"no module", "POST", base, `{"path":"/a"}`, 400, "invalid_argument", "module"},
		{"path too long", "POST", base, `{"module":"HTTP","path":"` + strings.Repeat("a", 1025) + `"}`, 413, "payload_too_large", "path"},
		{"dismiss without module", "DELETE", base + "?path=/a&modifier=GET", "", 400, "invalid_argument", "module"},
		{"dismiss without modifier", "DELETE", base + "?module=HTTP&path=/a", "", 400, "invalid_argument", "modifier"},
		{"promote without root", "POST", base + "/" + other + "/promote", `{}`, 400, "invalid_argument", "rootTLID"},
		{"promote bad root", "POST", base + "/" + other + "/promote", `{"rootTLID":"-1"}`, 400, "invalid_argument", "rootTLID"},
		{"promote unknown", "POST", base + "/" + unknown + "/promote", `{"rootTLID":"1"}`, 404, "not_found", ""},
		{"promote bad ID", "POST", base + "/xyz/promote", `{"rootTLID":"1"}`, 400, "invalid_argument", "traceID"},
		{"bad canvas", "GET", g.URL + "/v1/canvases/xyz/unmatched-requests", "", 400, "invalid_argument", "canvasID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := ""
			if tc.body != "" {
				ct = "application/json"
			}
			status, _, b := call(t, tc.method, tc.url, ct, []byte(tc.body))
			code, field := errorOf(t, b)
			if status != tc.status || code != tc.code || field != tc.field {
				t.Errorf("got %d %s %q, want %d %s %q (%s)", status, code, field, tc.status, tc.code, tc.field, b)
			}
		})
	}
}
