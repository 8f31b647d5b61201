package httpapi_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// Error messages name what the caller named and say what to do next: never
// object keys, SQL, or a chain of internal steps.
func TestErrorMessagesNameOnlyWhatTheCallerNamed(t *testing.T) {
	t.Parallel()
	g := newExecGateway(t)
	id, gen := g.saveDoc(t, `{"rootTLID":"1","input":[["request",1]]}`)
	unknown := traces.NewTraceID(time.Now()).String()
	url := g.canvasURL() + "/traces/" + id
	// The trace is replaced once, so gen is stale.
	if status, _, b := call(t, "PUT", url, "application/json", []byte(`{"rootTLID":"1","input":[["request",2]]}`)); status != 200 {
		t.Fatalf("replace: %d %s", status, b)
	}
	for _, tc := range []struct {
		name, method, url, body string
		hdr                     []string
		want                    string
	}{
		{"stale If-Match", "PUT", url, `{"rootTLID":"1"}`, []string{"If-Match", gen},
			"trace " + id + " is no longer at generation " + gen + ": read it again (GET) and retry with its ETag"},
		{"unknown trace", "GET", g.canvasURL() + "/traces/" + unknown, "", nil, "trace " + unknown + " not found"},
		{"replace of an unknown trace", "PUT", g.canvasURL() + "/traces/" + unknown, `{"rootTLID":"1"}`, nil,
			"trace " + unknown + " not found: a replace needs an existing trace (executors create them with POST)"},
		{"layer of an unknown trace", "POST", g.canvasURL() + "/traces/" + unknown + "/function-results",
			`{"functionResults":[{"tlid":"5","exprID":"1","fnName":"f","value":1}]}`, nil, "trace " + unknown + " not found"},
		{"same ID, other content", "POST", g.canvasURL() + "/traces", `{"traceID":"` + id + `","rootTLID":"9"}`, nil,
			"trace " + id + " exists with different content: a trace ID names one document"},
		{"unknown job", "GET", g.URL + "/v1/jobs/" + unknown, "", nil, "job " + unknown + " not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ct := ""
			if tc.body != "" {
				ct = "application/json"
			}
			_, _, b := call(t, tc.method, tc.url, ct, []byte(tc.body), tc.hdr...)
			var e struct {
				Error struct{ Message string } `json:"error"`
			}
			if err := json.Unmarshal(b, &e); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			if e.Error.Message != tc.want {
				t.Errorf("message = %q\nwant      %q", e.Error.Message, tc.want)
			}
			for _, leak := range []string{"/traces/", "/layers/", "SQLSTATE", ": not found", ": precondition failed", "generation 0"} {
				if strings.Contains(e.Error.Message, leak) {
					t.Errorf("message %q contains %q", e.Error.Message, leak)
				}
			}
		})
	}
}
