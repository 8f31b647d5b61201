package httpapi_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/canvases"
	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
	"github.com/tracegw/tracegw/testutil"
)

// execGateway is the API with the execute, unmatched and canvas routes
// wired (a Jobs runner included) on a real PostgreSQL index.
type execGateway struct {
	URL  string
	DB   *index.DB
	GCS  *objstore.GCS
	Emu  *testutil.Emu
	Jobs *canvases.Service
}

// newExecGateway is the gateway on the GCS emulator and its clock.
func newExecGateway(t *testing.T) *execGateway {
	t.Helper()
	g := &execGateway{}
	g.Emu = testutil.Emulator(t)
	g.GCS = objstore.New(g.Emu.Client, g.Emu.Bucket)
	now := g.Emu.E.Now
	db, err := index.Open(t.Context(), testutil.PG(t), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	g.DB = db
	svc := tracestore.New(g.GCS, db, tracestore.Options{Now: now})
	g.Jobs = canvases.New(g.GCS, db, canvases.Options{Now: now})
	api := httpapi.New(httpapi.Options{Service: svc, Canvases: g.Jobs, Limits: traces.Limits{MaxBody: 1 << 20},
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	hs := serveChecked(t, api.Handler())
	g.URL = hs.URL
	return g
}

func (g *execGateway) canvasURL() string { return g.URL + "/v1/canvases/" + canvas }

// saveDoc saves a JSON trace and returns its ID and generation.
func (g *execGateway) saveDoc(t *testing.T, doc string) (id, gen string) {
	t.Helper()
	status, _, b := call(t, "POST", g.canvasURL()+"/traces", "application/json", []byte(doc))
	if status != http.StatusCreated {
		t.Fatalf("save: %d %s", status, b)
	}
	var r saveResp
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.TraceID, r.Generation
}

// getDoc reads a trace as JSON.
func (g *execGateway) getDoc(t *testing.T, id string) (etag string, doc map[string]any) {
	t.Helper()
	status, hdr, b := call(t, "GET", g.canvasURL()+"/traces/"+id, "", nil)
	if status != http.StatusOK {
		t.Fatalf("get %s: %d %s", id, status, b)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	return hdr.Get("ETag"), doc
}

func TestReplaceTraceHTTP(t *testing.T) {
	t.Parallel()
	g := newExecGateway(t)
	id, gen := g.saveDoc(t, `{"rootTLID":"1","tlids":["2"],"input":[["request",1]]}`)
	held, _ := g.saveDoc(t, `{"rootTLID":"1"}`)
	if _, err := g.GCS.SetTemporaryHold(t.Context(), canvas+"/traces/"+held, true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	url := g.canvasURL() + "/traces/" + id
	replacement := `{"rootTLID":"1","tlids":["3"],"input":[["request",2]]}`

	status, hdr, b := call(t, "PUT", url, "application/json", []byte(replacement), "If-Match", `"`+gen+`"`)
	if status != http.StatusOK {
		t.Fatalf("replace: %d %s", status, b)
	}
	var got saveResp
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.TraceID != id || got.Generation == gen || hdr.Get("ETag") != `"`+got.Generation+`"` {
		t.Errorf("replace = %s, ETag %s; want %s with a new generation as ETag", b, hdr.Get("ETag"), id)
	}
	etag, doc := g.getDoc(t, id)
	if etag != `"`+got.Generation+`"` || doc["input"].([]any)[0].([]any)[1] != 2.0 {
		t.Errorf("read after replace: ETag %s, %v", etag, doc)
	}
	// Without If-Match the index's generation is the precondition.
	if status, _, b := call(t, "PUT", url, "application/json", []byte(replacement)); status != http.StatusOK {
		t.Errorf("replace without If-Match: %d %s", status, b)
	}

	for _, tc := range []struct {
		name, url, ct, body string
		hdr                 []string
		status              int
		code, field         string
	}{
		{"stale If-Match", url, "application/json", `{"rootTLID":"1","input":[["request",3]]}`, []string{"If-Match", `"` + gen + `"`}, 412, "failed_precondition", ""},
		{"bad If-Match", url, "application/json", replacement, []string{"If-Match", "*"}, 400, "invalid_argument", "If-Match"},
		{"body names another trace", url, "application/json", `{"traceID":"` + held + `","rootTLID":"1"}`, nil, 400, "invalid_argument", "traceID"},
		{"no rootTLID", url, "application/json", `{"tlids":[]}`, nil, 400, "invalid_argument", "rootTLID"},
		{"bad canvas", g.URL + "/v1/canvases/NOPE/traces/" + id, "application/json", replacement, nil, 400, "invalid_argument", "canvasID"},
		{"bad trace ID", g.canvasURL() + "/traces/123", "application/json", replacement, nil, 400, "invalid_argument", "traceID"},
		{"media type", url, "text/plain", replacement, nil, 415, "unsupported_media_type", ""},
		{"If-Match on an unknown trace", g.canvasURL() + "/traces/" + traces.NewTraceID(time.Now()).String(), "application/json", replacement, []string{"If-Match", "7"}, 404, "not_found", ""},
		// Only executors create traces (POST): a replace never does.
		{"unknown trace", g.canvasURL() + "/traces/" + traces.NewTraceID(time.Now()).String(), "application/json", replacement, nil, 404, "not_found", ""},
		{"held", g.canvasURL() + "/traces/" + held, "application/json", `{"rootTLID":"1"}`, nil, 409, "failed_precondition", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, b := call(t, "PUT", tc.url, tc.ct, []byte(tc.body), tc.hdr...)
			code, field := errorOf(t, b)
			if status != tc.status || code != tc.code || field != tc.field {
				t.Errorf("got %d %s %q, want %d %s %q (%s)", status, code, field, tc.status, tc.code, tc.field, b)
			}
		})
	}
}

func TestFunctionResultsHTTP(t *testing.T) {
	t.Parallel()
	g := newExecGateway(t)
	id, _ := g.saveDoc(t, `{"rootTLID":"1","functionResults":[{"tlid":"5","exprID":"1","fnName":"f","argHash":"a","value":1}]}`)
	url := g.canvasURL() + "/traces/" + id + "/function-results"
	for i, layer := range []string{
		`{"functionResults":[{"tlid":"5","exprID":"1","fnName":"f","argHash":"a","value":2}]}`,
		`{"tlids":["9"],"functionResults":[{"tlid":"5","exprID":"1","fnName":"f","argHash":"a","value":3}]}`,
	} {
		status, hdr, b := call(t, "POST", url, "application/json", []byte(layer))
		var got struct {
			TraceID string `json:"traceID"`
			Layer   int    `json:"layer"`
		}
		if err := json.Unmarshal(b, &got); err != nil || status != http.StatusCreated || got.TraceID != id || got.Layer != i+1 {
			t.Fatalf("layer %d: %d %s", i+1, status, b)
		}
		if !strings.HasSuffix(hdr.Get("Location"), "/traces/"+id) {
			t.Errorf("Location = %q", hdr.Get("Location"))
		}
	}
	_, doc := g.getDoc(t, id)
	results := doc["functionResults"].([]any)
	if len(results) != 1 || results[0].(map[string]any)["value"] != 3.0 {
		t.Errorf("merged results = %v, want the later layer's value 3", results)
	}
	status, _, b := call(t, "GET", g.canvasURL()+"/toplevels/9/traces", "", nil)
	if status != http.StatusOK || !strings.Contains(string(b), id) {
		t.Errorf("list of the layer's tlid: %d %s", status, b)
	}
	unknown := g.canvasURL() + "/traces/" + traces.NewTraceID(time.Now()).String() + "/function-results"
	for _, tc := range []struct {
		name, url, body string
		status          int
		code, field     string
	}{
		{"no results", url, `{"tlids":["1"]}`, 400, "invalid_argument", "functionResults"},
		{"bad result", url, `{"functionResults":[{"tlid":"x"}]}`, 400, "invalid_argument", "functionResults[0].tlid"},
		{"unknown trace", unknown, `{"functionResults":[{"tlid":"5","exprID":"1","fnName":"f","value":1}]}`, 404, "not_found", ""},
		{"bad trace ID", g.canvasURL() + "/traces/nope/function-results", `{}`, 400, "invalid_argument", "traceID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, b := call(t, "POST", tc.url, "application/json", []byte(tc.body))
			code, field := errorOf(t, b)
			if status != tc.status || code != tc.code || field != tc.field {
				t.Errorf("got %d %s %q, want %d %s %q (%s)", status, code, field, tc.status, tc.code, tc.field, b)
			}
		})
	}
}
