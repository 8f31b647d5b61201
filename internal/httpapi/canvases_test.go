package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

func TestForgetToplevelHTTP(t *testing.T) {
	t.Parallel()
	g := newExecGateway(t)
	for _, tc := range []struct {
		name, url   string
		status      int
		code, field string
	}{
		{"forget", g.canvasURL() + "/toplevels/42", 204, "", ""},
		{"again", g.canvasURL() + "/toplevels/42", 204, "", ""},
		{"unknown toplevel", g.canvasURL() + "/toplevels/43", 204, "", ""},
		{"bad tlid", g.canvasURL() + "/toplevels/x1", 400, "invalid_argument", "tlid"},
		{"bad canvas", g.URL + "/v1/canvases/x/toplevels/42", 400, "invalid_argument", "canvasID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, b := call(t, "DELETE", tc.url, "", nil)
			if status != tc.status {
				t.Fatalf("status %d, want %d (%s)", status, tc.status, b)
			}
			if tc.code != "" {
				if code, field := errorOf(t, b); code != tc.code || field != tc.field {
					t.Errorf("error %s %q, want %s %q", code, field, tc.code, tc.field)
				}
			}
		})
	}
}

type jobBody struct {
	JobID, ID, CanvasID, State, Error string
	Deleted                           int64
}

func TestDeleteCanvasHTTP(t *testing.T) {
	t.Parallel()
	g := newExecGateway(t)
	id, _ := g.saveDoc(t, `{"rootTLID":"1"}`)
	g.postUnmatched(t, `{"module":"HTTP","path":"/a","modifier":"GET"}`)

	del := func() jobBody {
		t.Helper()
		status, hdr, b := call(t, "DELETE", g.canvasURL(), "", nil)
		var j jobBody
		if err := json.Unmarshal(b, &j); err != nil || status != http.StatusAccepted || j.JobID == "" || j.ID != j.JobID {
			t.Fatalf("delete canvas: %d %s", status, b)
		}
		if hdr.Get("Location") != "/v1/jobs/"+j.JobID {
			t.Errorf("Location = %q, want /v1/jobs/%s", hdr.Get("Location"), j.JobID)
		}
		return j
	}
	first := del()
	if again := del(); again.JobID != first.JobID { // no runner yet: still running
		t.Errorf("second delete started job %s, want the running %s", again.JobID, first.JobID)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- g.Jobs.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	jobID, err := traces.ParseJobID(first.JobID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.Jobs.Wait(t.Context(), jobID); err != nil {
		t.Fatal(err)
	}
	status, _, b := call(t, "GET", g.URL+"/v1/jobs/"+first.JobID, "", nil)
	var j jobBody
	if err := json.Unmarshal(b, &j); err != nil || status != http.StatusOK {
		t.Fatalf("get job: %d %s", status, b)
	}
	if j.State != "done" || j.Deleted != 2 || j.CanvasID != canvas || j.Error != "" {
		t.Errorf("job = %+v, want done with 2 objects deleted", j)
	}
	if status, _, _ := call(t, "GET", g.canvasURL()+"/traces/"+id, "", nil); status != http.StatusNotFound {
		t.Errorf("trace after canvas deletion: %d, want 404", status)
	}
	if list := g.listUnmatched(t); len(list) != 0 {
		t.Errorf("unmatched after canvas deletion: %v", list)
	}

	for _, tc := range []struct {
		name, method, url string
		status            int
		code, field       string
	}{
		{"unknown job", "GET", g.URL + "/v1/jobs/" + traces.NewTraceID(time.Now()).String(), 404, "not_found", ""},
		{"bad job ID", "GET", g.URL + "/v1/jobs/42", 400, "invalid_argument", "jobID"},
		{"bad canvas", "DELETE", g.URL + "/v1/canvases/" + strings.ToUpper(canvas), 400, "invalid_argument", "canvasID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, b := call(t, tc.method, tc.url, "", nil)
			code, field := errorOf(t, b)
			if status != tc.status || code != tc.code || field != tc.field {
				t.Errorf("got %d %s %q, want %d %s %q (%s)", status, code, field, tc.status, tc.code, tc.field, b)
			}
		})
	}
}
