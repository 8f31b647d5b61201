package httpapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/google/go-cmp/cmp"
	"github.com/vmihailenco/msgpack/v5"
	"google.golang.org/api/googleapi"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/holds"
	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
	"github.com/tracegw/tracegw/testutil"
)

// newHoldsGateway is a gateway with the hold routes wired, sharing the
// emulator's clock, on a bucket whose lifecycle rule deletes objects 7 days
// after their customTime. quota 0 means the default.
func newHoldsGateway(t *testing.T, quota int) *gateway {
	t.Helper()
	ctx := t.Context()
	db, err := index.Open(ctx, testutil.PG(t), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	emu := testutil.EmulatorWithOptions(t, emulator.Options{Step: 24 * time.Hour})
	_, err = emu.Client.Bucket(emu.Bucket).Update(ctx, storage.BucketAttrsToUpdate{Lifecycle: &storage.Lifecycle{Rules: []storage.LifecycleRule{{
		Action:    storage.LifecycleAction{Type: storage.DeleteAction},
		Condition: storage.LifecycleCondition{DaysSinceCustomTime: 7},
	}}}})
	if err != nil {
		t.Fatalf("set lifecycle rule: %v", err)
	}
	gcs := objstore.New(emu.Client, emu.Bucket)
	hs := holds.New(gcs, db, holds.Options{Now: emu.E.Now, Quota: quota})
	api := httpapi.New(httpapi.Options{
		Service: tracestore.New(gcs, db, tracestore.Options{Now: emu.E.Now}),
		Holds:   hs,
		Limits:  traces.Limits{MaxBody: 1 << 20},
		Logger:  slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	srv := serveChecked(t, api.Handler())
	return &gateway{URL: srv.URL, DB: db, GCS: gcs, Client: emu.Client, Bucket: emu.Bucket, Emu: emu}
}

// saveAt saves a trace of toplevel root (plus tlids) timestamped at ts and
// returns its ID.
func saveAt(t *testing.T, g *gateway, root string, ts time.Time, tlids ...string) string {
	t.Helper()
	doc := fmt.Sprintf(`{"rootTLID":%q,"timestamp":%q,"tlids":[%s]}`, root, ts.UTC().Format("2006-01-02T15:04:05.000Z"), quoteAll(tlids))
	status, _, b := call(t, "POST", tracesURL(g, canvas), "application/json", []byte(doc))
	if status != http.StatusCreated {
		t.Fatalf("save: status %d, body %s", status, b)
	}
	var r saveResp
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.TraceID
}

func quoteAll(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ",")
}

func holdURL(g *gateway, id string) string { return tracesURL(g, canvas) + "/" + id + "/hold" }

func holdsURL(g *gateway) string { return g.URL + "/v1/canvases/" + canvas + "/holds" }

type holdItem struct {
	TraceID string `json:"traceID"`
	Reason  string `json:"reason"`
	HeldAt  string `json:"heldAt"`
}

func listHolds(t *testing.T, g *gateway) []holdItem {
	t.Helper()
	status, _, b := call(t, "GET", holdsURL(g), "", nil)
	if status != http.StatusOK {
		t.Fatalf("list holds: %d %s", status, b)
	}
	var r struct{ Holds []holdItem }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.Holds
}

// heldFlags returns "traceID=held" for each trace of a toplevel's list,
// newest first.
func heldFlags(t *testing.T, g *gateway, tlid string) []string {
	t.Helper()
	status, _, b := call(t, "GET", g.URL+"/v1/canvases/"+canvas+"/toplevels/"+tlid+"/traces?limit=100", "", nil)
	if status != http.StatusOK {
		t.Fatalf("list toplevel %s: %d %s", tlid, status, b)
	}
	var r struct {
		Traces []struct {
			TraceID string
			Held    bool
		}
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, x := range r.Traces {
		out = append(out, fmt.Sprintf("%s=%v", x.TraceID, x.Held))
	}
	return out
}

// TestHoldRoutes: PUT holds (JSON, msgpack or no body; a repeat without a
// reason keeps it), GET lists the holds, both toplevel listings show held,
// and DELETE releases (204, idempotent).
func TestHoldRoutes(t *testing.T) {
	t.Parallel()
	g := newHoldsGateway(t, 0)
	base := g.Emu.E.Now().Add(-time.Hour)
	t1 := saveAt(t, g, "77", base, "88")
	t2 := saveAt(t, g, "77", base.Add(time.Second))
	t3 := saveAt(t, g, "77", base.Add(2*time.Second))

	status, hdr, b := call(t, "PUT", holdURL(g, t1), "application/json", []byte(`{"reason":"bug 42"}`))
	if status != http.StatusOK {
		t.Fatalf("hold: %d %s", status, b)
	}
	var h holdItem
	if err := json.Unmarshal(b, &h); err != nil || hdr.Get("Content-Type") != "application/json" {
		t.Fatalf("hold body %s (%s): %v", b, hdr.Get("Content-Type"), err)
	}
	if _, err := time.Parse("2006-01-02T15:04:05.000Z", h.HeldAt); err != nil || h.TraceID != t1 || h.Reason != "bug 42" {
		t.Errorf("hold answered %+v (heldAt: %v), want trace %s, reason bug 42, heldAt RFC 3339 with ms", h, err, t1)
	}
	if status, _, b := call(t, "PUT", holdURL(g, t1), "", nil); status != http.StatusOK || !strings.Contains(string(b), `"reason":"bug 42"`) {
		t.Errorf("repeated hold without body: %d %s, want 200 keeping the reason", status, b)
	}
	mp, _ := msgpack.Marshal(map[string]any{"reason": "flaky"})
	if status, _, b := call(t, "PUT", holdURL(g, t2), "application/msgpack", mp); status != http.StatusOK {
		t.Errorf("msgpack hold: %d %s", status, b)
	}

	got := listHolds(t, g)
	for i := range got {
		got[i].HeldAt = ""
	}
	if d := cmp.Diff([]holdItem{{TraceID: t2, Reason: "flaky"}, {TraceID: t1, Reason: "bug 42"}}, got); d != "" {
		t.Errorf("holds (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{t3 + "=false", t2 + "=true", t1 + "=true"}, heldFlags(t, g, "77")); d != "" {
		t.Errorf("toplevel 77 (-want +got):\n%s", d)
	}
	status, _, b = call(t, "POST", g.URL+"/v1/canvases/"+canvas+"/recent-traces", "application/json", []byte(`{"tlids":["88"]}`))
	if status != http.StatusOK || !strings.Contains(string(b), `"held":true`) {
		t.Errorf("recent-traces of a function the held trace touched: %d %s, want held true", status, b)
	}

	for range 2 {
		if status, _, b := call(t, "DELETE", holdURL(g, t1), "", nil); status != http.StatusNoContent || len(b) != 0 {
			t.Errorf("release: %d %q, want 204 and no body", status, b)
		}
	}
	if got := listHolds(t, g); len(got) != 1 || got[0].TraceID != t2 {
		t.Errorf("holds after release = %+v, want only %s", got, t2)
	}
	if d := cmp.Diff([]string{t3 + "=false", t2 + "=true", t1 + "=false"}, heldFlags(t, g, "77")); d != "" {
		t.Errorf("toplevel 77 after release (-want +got):\n%s", d)
	}
}

// TestHoldRouteErrors: malformed IDs are 400 before any lookup, unknown
// traces 404, bad bodies 400/413/415.
func TestHoldRouteErrors(t *testing.T) {
	t.Parallel()
	g := newHoldsGateway(t, 0)
	id := saveAt(t, g, "77", g.Emu.E.Now())
	unknown := traces.NewTraceID(g.Emu.E.Now()).String()
	c := g.URL + "/v1/canvases/"
	for _, tc := range []struct {
		name, method, url, ct, body string
		status                      int
		code, field                 string
	}{
		{"put bad canvas", "PUT", c + "nope/traces/" + id + "/hold", "", "", 400, "invalid_argument", "canvasID"},
		{"put bad trace", "PUT", c + canvas + "/traces/nope/hold", "", "", 400, "invalid_argument", "traceID"},
		{"put uppercase trace", "PUT", c + canvas + "/traces/" + strings.ToUpper(id) + "/hold", "", "", 400, "invalid_argument", "traceID"},
		{"delete bad canvas", "DELETE", c + "nope/traces/" + id + "/hold", "", "", 400, "invalid_argument", "canvasID"},
		{"delete bad trace", "DELETE", c + canvas + "/traces/nope/hold", "", "", 400, "invalid_argument", "traceID"},
		{"list bad canvas", "GET", c + "nope/holds", "", "", 400, "invalid_argument", "canvasID"},
		{"put unknown", "PUT", holdURL(g, unknown), "", "", 404, "not_found", ""},
		{"delete unknown", "DELETE", holdURL(g, unknown), "", "", 404, "not_found", ""},
		{"reason not a string", "PUT", holdURL(g, id), "application/json", `{"reason":5}`, 400, "invalid_argument", "reason"},
		{"reason twice", "PUT", holdURL(g, id), "application/json", `{"reason":"a","reason":"b"}`, 400, "invalid_argument", "reason"},
		{"reason too long", "PUT", holdURL(g, id), "application/json", `{"reason":"` + strings.Repeat("x", holds.MaxReason+1) + `"}`, 413, "payload_too_large", "reason"},
		{"body not an object", "PUT", holdURL(g, id), "application/json", `[]`, 400, "invalid_argument", ""},
		{"media type", "PUT", holdURL(g, id), "text/plain", "x", 415, "unsupported_media_type", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, b := call(t, tc.method, tc.url, tc.ct, []byte(tc.body))
			if status != tc.status {
				t.Fatalf("status %d, want %d: %s", status, tc.status, b)
			}
			code, field := errorOf(t, b)
			if code != tc.code || (tc.field != "" && field != tc.field) {
				t.Errorf("error %s (field %q), want %s (field %q): %s", code, field, tc.code, tc.field, b)
			}
		})
	}
	if got := listHolds(t, g); len(got) != 0 {
		t.Errorf("holds after failed requests = %+v, want none", got)
	}
}

// TestHoldQuotaHTTP: beyond the canvas's quota a new hold is 429
// resource_exhausted; re-holding a held trace is not a new hold.
func TestHoldQuotaHTTP(t *testing.T) {
	t.Parallel()
	g := newHoldsGateway(t, 2)
	base := g.Emu.E.Now()
	var ids []string
	for i := range 3 {
		ids = append(ids, saveAt(t, g, "77", base.Add(time.Duration(i)*time.Millisecond)))
	}
	for _, id := range []string{ids[0], ids[1], ids[0]} {
		if status, _, b := call(t, "PUT", holdURL(g, id), "", nil); status != http.StatusOK {
			t.Fatalf("hold %s: %d %s", id, status, b)
		}
	}
	status, _, b := call(t, "PUT", holdURL(g, ids[2]), "", nil)
	if code, _ := errorOf(t, b); status != http.StatusTooManyRequests || code != "resource_exhausted" {
		t.Fatalf("hold beyond quota: %d %s, want 429 resource_exhausted", status, b)
	}
	if status, _, b := call(t, "DELETE", holdURL(g, ids[1]), "", nil); status != http.StatusNoContent {
		t.Fatalf("release: %d %s", status, b)
	}
	if status, _, b := call(t, "PUT", holdURL(g, ids[2]), "", nil); status != http.StatusOK {
		t.Errorf("hold after a release freed a slot: %d %s", status, b)
	}
}

// TestHoldEndToEndHTTP: through the API with the emulator's clock, a held
// trace that is not among its toplevel's latest 10 survives 60 days, cannot
// be deleted directly, and after release lives one more retention period.
func TestHoldEndToEndHTTP(t *testing.T) {
	t.Parallel()
	g := newHoldsGateway(t, 0)
	ctx := t.Context()
	base := g.Emu.E.Now().Add(-time.Hour)
	held := saveAt(t, g, "77", base)
	for i := 1; i <= 11; i++ {
		saveAt(t, g, "77", base.Add(time.Duration(i)*time.Second))
	}
	if status, _, b := call(t, "PUT", holdURL(g, held), "application/json", []byte(`{"reason":"repro"}`)); status != http.StatusOK {
		t.Fatalf("hold: %d %s", status, b)
	}
	key := canvas + "/traces/" + held
	err := g.Client.Bucket(g.Bucket).Object(key).Delete(ctx)
	var ge *googleapi.Error
	if !errors.As(err, &ge) || ge.Code != http.StatusForbidden {
		t.Errorf("deleting the held object directly: %v, want 403", err)
	}
	get := func() int {
		status, _, _ := call(t, "GET", tracesURL(g, canvas)+"/"+held, "", nil)
		return status
	}
	advance := func(d time.Duration) {
		if _, err := g.Emu.E.Advance(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	advance(60 * 24 * time.Hour)
	if s := get(); s != http.StatusOK {
		t.Fatalf("held trace after 60 days: GET %d, want 200", s)
	}
	if flags := heldFlags(t, g, "77"); len(flags) != 12 || flags[11] != held+"=true" {
		t.Errorf("toplevel 77 after 60 days = %v, want the held trace last and held", flags)
	}
	if status, _, b := call(t, "DELETE", holdURL(g, held), "", nil); status != http.StatusNoContent {
		t.Fatalf("release: %d %s", status, b)
	}
	advance(6 * 24 * time.Hour)
	if s := get(); s != http.StatusOK {
		t.Fatalf("6 days after release: GET %d, want 200", s)
	}
	advance(2 * 24 * time.Hour)
	if s := get(); s != http.StatusNotFound {
		t.Fatalf("8 days after release: GET %d, want 404", s)
	}
	if _, err := g.GCS.Stat(ctx, key); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("object 8 days after release: %v, want not found", err)
	}
	if status, _, b := call(t, "PUT", holdURL(g, held), "", nil); status != http.StatusNotFound {
		t.Errorf("holding the expired trace: %d %s, want 404", status, b)
	}
}

// TestReplaceHeldTrace: "execute handler" cannot overwrite a held trace
// (GCS refuses): 409 failed_precondition saying to release the hold first,
// and the trace is unchanged; once released the replace goes through.
func TestReplaceHeldTrace(t *testing.T) {
	t.Parallel()
	g := newHoldsGateway(t, 0)
	ts := g.Emu.E.Now()
	id := saveAt(t, g, "77", ts)
	if status, _, b := call(t, "PUT", holdURL(g, id), "", nil); status != http.StatusOK {
		t.Fatalf("hold: %d %s", status, b)
	}
	doc := []byte(fmt.Sprintf(`{"rootTLID":"99","timestamp":%q}`, ts.UTC().Format("2006-01-02T15:04:05.000Z")))
	status, _, b := call(t, "PUT", tracesURL(g, canvas)+"/"+id, "application/json", doc)
	if code, _ := errorOf(t, b); status != http.StatusConflict || code != "failed_precondition" || !strings.Contains(string(b), "release the hold") {
		t.Errorf("replace held trace: %d %s, want 409 failed_precondition saying to release the hold", status, b)
	}
	if status, _, b := call(t, "GET", tracesURL(g, canvas)+"/"+id, "", nil); status != http.StatusOK || !strings.Contains(string(b), `"rootTLID":"77"`) {
		t.Errorf("held trace after a refused replace: %d %s, want the original", status, b)
	}
	if status, _, b := call(t, "DELETE", holdURL(g, id), "", nil); status != http.StatusNoContent {
		t.Fatalf("release: %d %s", status, b)
	}
	if status, _, b := call(t, "PUT", tracesURL(g, canvas)+"/"+id, "application/json", doc); status != http.StatusOK {
		t.Errorf("replace after release: %d %s, want 200", status, b)
	}
}

// A hold sent chunked with no body and no Content-Type has no body.
func TestHoldChunkedEmptyBody(t *testing.T) {
	t.Parallel()
	g := newHoldsGateway(t, 0)
	r := save(t, g, `{"rootTLID":"3"}`)
	req, err := http.NewRequestWithContext(t.Context(), "PUT", holdURL(g, r.TraceID), io.NopCloser(strings.NewReader("")))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // unknown: sent chunked
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("status %d, want 200", resp.StatusCode)
	}
}
