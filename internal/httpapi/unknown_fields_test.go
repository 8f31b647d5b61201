package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tracegw/tracegw/internal/traces"
)

// Request bodies are closed (api/openapi.yaml's additionalProperties:
// false): a top-level field no schema lists is 400 invalid_argument naming
// it, in JSON and msgpack alike, and nothing is stored. A misspelt
// "functionResults" would otherwise lose the results silently.
func TestUnknownBodyFieldsRefused(t *testing.T) {
	t.Parallel()
	g := newHoldsGateway(t, 0)
	id := save(t, g, `{"rootTLID":"1"}`).TraceID
	other := traces.NewTraceID(time.Now()).String()
	results := []any{map[string]any{"tlid": "9", "exprID": "1", "fnName": "f", "value": 1}}
	c := "/v1/canvases/" + canvas
	for _, tc := range []struct {
		name, method, path string
		body               map[string]any // a valid body plus one misspelt field
		field              string
	}{
		{"save", "POST", c + "/traces", map[string]any{"rootTLID": "9", "functionResult": results}, "functionResult"},
		{"replace", "PUT", c + "/traces/" + id, map[string]any{"rootTLID": "9", "imput": []any{}}, "imput"},
		{"layer", "POST", c + "/traces/" + id + "/function-results", map[string]any{"functionResults": results, "tlid": "9"}, "tlid"},
		{"unmatched", "POST", c + "/unmatched-requests", map[string]any{"module": "HTTP", "path": "/a", "modifer": "GET"}, "modifer"},
		{"hold", "PUT", c + "/traces/" + id + "/hold", map[string]any{"reason": "r", "untill": "72h"}, "untill"},
		{"recent", "POST", c + "/recent-traces", map[string]any{"tlids": []any{"9"}, "limt": 3}, "limt"},
		{"promote", "POST", c + "/unmatched-requests/" + other + "/promote", map[string]any{"rootTLID": "9", "root": "9"}, "root"},
	} {
		for _, ct := range []string{"application/json", "application/msgpack"} {
			t.Run(tc.name+"/"+ct, func(t *testing.T) {
				var body []byte
				var err error
				if ct == "application/json" {
					body, err = json.Marshal(tc.body)
				} else {
					body, err = msgpack.Marshal(tc.body)
				}
				if err != nil {
					t.Fatal(err)
				}
				status, _, b := call(t, tc.method, g.URL+tc.path, ct, body)
				code, field := errorOf(t, b)
				if status != http.StatusBadRequest || code != "invalid_argument" || field != tc.field || !strings.Contains(string(b), "unknown field") {
					t.Errorf("got %d %s field %q (%s), want 400 invalid_argument field %q", status, code, field, b, tc.field)
				}
			})
		}
	}
	// Nothing changed: toplevel 9 has no traces, the trace has no layer, no
	// hold and no unmatched request was recorded.
	if list := listTLID(t, g, "9", 100); len(list) != 0 {
		t.Errorf("refused requests wrote %d traces of toplevel 9", len(list))
	}
	if hs := listHolds(t, g); len(hs) != 0 {
		t.Errorf("refused hold placed: %v", hs)
	}
	status, _, b := call(t, "GET", g.URL+c+"/unmatched-requests", "", nil)
	if status != http.StatusOK || strings.Contains(string(b), `"/a"`) {
		t.Errorf("unmatched after the refused request: %d %s", status, b)
	}
}
