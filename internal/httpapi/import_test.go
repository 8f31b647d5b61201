package httpapi_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
)

// POST …/traces?import=true: admin only, the trace's ID required, the
// object's customTime is the trace's own timestamp, and the answers are a
// save's (201, then 200 for the same document, 409 for another).
func TestImportMode(t *testing.T) {
	t.Parallel()
	g := newSecureGateway(t, "", nil)
	const canvas = "7d3f5a1c-0000-4000-8000-0000000001a1"
	url := g.URL + "/v1/canvases/" + canvas + "/traces"
	ts := time.Now().Add(-20 * 24 * time.Hour).UTC().Truncate(time.Millisecond)
	id := traces.NewTraceID(ts)
	doc := fmt.Sprintf(`{"traceID":%q,"rootTLID":"7","timestamp":%q,"input":[["request",{"body":"old"}]]}`, id, ts.Format(time.RFC3339Nano))
	admin, executor := g.token(t, httpapi.RoleAdmin, ""), g.token(t, httpapi.RoleExecutor, "")

	if status, _, b := call(t, "POST", url+"?import=true", "application/json", []byte(doc), bearer(executor)...); status != http.StatusForbidden {
		t.Errorf("executor import: status %d, want 403; body %s", status, b)
	}
	if status, _, b := call(t, "POST", url+"?import=yes", "application/json", []byte(doc), bearer(admin)...); status != http.StatusBadRequest {
		t.Errorf("import=yes: status %d, want 400; body %s", status, b)
	} else if _, field := errorOf(t, b); field != "import" {
		t.Errorf("import=yes names field %q, want import", field)
	}
	noID := `{"rootTLID":"7","input":[]}`
	if status, _, b := call(t, "POST", url+"?import=true", "application/json", []byte(noID), bearer(admin)...); status != http.StatusBadRequest {
		t.Errorf("import without traceID: status %d, want 400; body %s", status, b)
	} else if _, field := errorOf(t, b); field != "traceID" {
		t.Errorf("import without traceID names field %q, want traceID", field)
	}

	if status, _, b := call(t, "POST", url+"?import=true", "application/json", []byte(doc), bearer(admin)...); status != http.StatusCreated {
		t.Fatalf("import: status %d, want 201; body %s", status, b)
	}
	c, _ := traces.ParseCanvasID(canvas)
	info, err := objstore.New(g.Emu.Client, g.Emu.Bucket).Stat(t.Context(), traces.TraceKey(c, id))
	if err != nil {
		t.Fatal(err)
	}
	if want := ts.Truncate(time.Second); !info.CustomTime.Equal(want) {
		t.Errorf("imported object's customTime = %s, want the trace's timestamp %s", info.CustomTime, want)
	}
	if status, _, b := call(t, "POST", url+"?import=true", "application/json", []byte(doc), bearer(admin)...); status != http.StatusOK {
		t.Errorf("the same import again: status %d, want 200; body %s", status, b)
	}
	other := fmt.Sprintf(`{"traceID":%q,"rootTLID":"7","timestamp":%q,"input":[["request",{"body":"else"}]]}`, id, ts.Format(time.RFC3339Nano))
	if status, _, b := call(t, "POST", url+"?import=true", "application/json", []byte(other), bearer(admin)...); status != http.StatusConflict {
		t.Errorf("another document under the ID: status %d, want 409; body %s", status, b)
	}
	// A plain save of a new trace still gets customTime now.
	fresh := traces.NewTraceID(time.Now().Add(-time.Hour))
	plain := fmt.Sprintf(`{"traceID":%q,"rootTLID":"7"}`, fresh)
	if status, _, b := call(t, "POST", url+"?import=false", "application/json", []byte(plain), bearer(executor)...); status != http.StatusCreated {
		t.Fatalf("import=false by an executor: status %d, want 201; body %s", status, b)
	}
	info, err = objstore.New(g.Emu.Client, g.Emu.Bucket).Stat(t.Context(), traces.TraceKey(c, fresh))
	if err != nil {
		t.Fatal(err)
	}
	if info.CustomTime.Before(time.Now().Add(-time.Minute)) {
		t.Errorf("plain save's customTime = %s, want about now", info.CustomTime)
	}
}

// GET /v1/canvases (admin) pages through the canvases that hold traces.
func TestListCanvases(t *testing.T) {
	t.Parallel()
	g := newSecureGateway(t, "", nil)
	admin, editor := g.token(t, httpapi.RoleAdmin, ""), g.token(t, httpapi.RoleEditor, "")
	canvases := []string{"7d3f5a1c-0000-4000-8000-0000000002a1", "7d3f5a1c-0000-4000-8000-0000000002a2", "7d3f5a1c-0000-4000-8000-0000000002a3"}
	for _, c := range canvases {
		for range 2 {
			g.saveAs(t, c, admin)
		}
	}
	var got []string
	cursor := ""
	for pages := 0; pages < 5; pages++ {
		url := g.URL + "/v1/canvases?limit=2"
		if cursor != "" {
			url += "&cursor=" + cursor
		}
		status, _, b := call(t, "GET", url, "", nil, bearer(admin)...)
		if status != http.StatusOK {
			t.Fatalf("list canvases: %d %s", status, b)
		}
		var page struct {
			Canvases   []string
			NextCursor string
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatal(err)
		}
		got = append(got, page.Canvases...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	if !slices.Equal(got, canvases) {
		t.Errorf("canvases = %v, want %v", got, canvases)
	}
	if status, _, _ := call(t, "GET", g.URL+"/v1/canvases", "", nil, bearer(editor)...); status != http.StatusForbidden {
		t.Errorf("an editor lists canvases: %d, want 403", status)
	}
	if status, _, b := call(t, "GET", g.URL+"/v1/canvases?limit=1001", "", nil, bearer(admin)...); status != http.StatusBadRequest {
		t.Errorf("limit 1001: %d %s, want 400", status, b)
	}
}
