package clientcompat_test

import (
	"bytes"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/internal/httpapi"
)

func TestSaveGet(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	c := g.newClient(t)
	ctx := t.Context()
	canvas := newCanvas()
	tr := sampleTrace(7, 7, 8)
	s, err := c.Save(ctx, canvas, tr)
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	if !s.Created || s.ID == "" || s.ID != tr.ID || s.Generation == 0 {
		t.Fatalf("Save = %+v (trace ID %q), want created with the ID it set and a generation", s, tr.ID)
	}
	got, gen, err := c.Get(ctx, canvas, s.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if gen != s.Generation {
		t.Errorf("Get generation = %d, want %d", gen, s.Generation)
	}
	want := *tr
	want.TLIDs = []client.TLID{7, 8}
	want.Timestamp = s.ID.Time()
	if diff := cmp.Diff(&want, got); diff != "" {
		t.Errorf("Get (-want +got):\n%s", diff)
	}
	var in map[string]any
	if err := got.Input[0].Value.Decode(&in); err != nil || in["body"] != "hello" {
		t.Errorf("input value = %v, %v; want body hello", in, err)
	}

	// The same *Trace again is a retry: 200, same ID, nothing new.
	again, err := c.Save(ctx, canvas, tr)
	if err != nil {
		t.Fatalf("Save again: %v", err)
	}
	if again.Created || again.ID != s.ID || again.Generation != s.Generation {
		t.Errorf("Save again = %+v, want the first save %+v, not created", again, s)
	}
	// Same ID, other content: ErrConflict with the API's code.
	other := sampleTrace(7)
	other.ID = tr.ID
	_, err = c.Save(ctx, canvas, other)
	var apiErr *client.APIError
	if !errors.Is(err, client.ErrConflict) || !errors.As(err, &apiErr) || apiErr.Code != "already_exists" || apiErr.Status != http.StatusConflict || apiErr.RequestID == "" {
		t.Errorf("Save conflicting = %v (%+v), want ErrConflict, 409 already_exists with a request id", err, apiErr)
	}
}

func TestRecent(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	c := g.newClient(t)
	ctx := t.Context()
	canvas := newCanvas()
	base := time.Now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	var ids []client.TraceID
	for i := range 3 {
		tr := sampleTrace(1, 2)
		tr.Timestamp = base.Add(time.Duration(i) * time.Second)
		s, err := c.Save(ctx, canvas, tr)
		if err != nil {
			t.Fatalf("Save %d: %v", i, err)
		}
		ids = append(ids, s.ID)
	}
	list, err := c.Recent(ctx, canvas, 2, 2)
	if err != nil {
		t.Fatalf("Recent: %v", err)
	}
	kept := client.Kept{Because: []string{"latest", "recent"}, LatestFor: []client.TLID{1, 2}}
	want := []client.Summary{
		{ID: ids[2], Timestamp: base.Add(2 * time.Second), RootTLID: 1, Kept: kept},
		{ID: ids[1], Timestamp: base.Add(time.Second), RootTLID: 1, Kept: kept},
	}
	if diff := cmp.Diff(want, list); diff != "" {
		t.Errorf("Recent (-want +got):\n%s", diff)
	}
	m, err := c.RecentMany(ctx, canvas, []client.TLID{1, 99}, 1)
	if err != nil {
		t.Fatalf("RecentMany: %v", err)
	}
	wantMany := map[client.TLID][]client.Summary{1: want[:1], 99: {}}
	if diff := cmp.Diff(wantMany, m); diff != "" {
		t.Errorf("RecentMany (-want +got):\n%s", diff)
	}
	if _, err := c.Recent(ctx, canvas, 1, 1000); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("Recent limit 1000 = %v, want ErrInvalid", err)
	}
	if err := c.ForgetToplevel(ctx, canvas, 2); err != nil {
		t.Errorf("ForgetToplevel: %v", err)
	}
}

func TestReplaceAndLayers(t *testing.T) {
	t.Parallel()
	g := newMemGateway(t)
	c := g.newClient(t)
	ctx := t.Context()
	canvas := newCanvas()
	s, err := c.Save(ctx, canvas, sampleTrace(5))
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	repl := sampleTrace(5)
	repl.Input = []client.InputVar{{Name: "request", Value: client.MustValue("replaced")}}
	if _, err := c.Replace(ctx, canvas, s.ID, repl, s.Generation+1000); !errors.Is(err, client.ErrPrecondition) {
		t.Fatalf("Replace with a wrong generation = %v, want ErrPrecondition", err)
	}
	r, err := c.Replace(ctx, canvas, s.ID, repl, s.Generation)
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	if r.ID != s.ID || r.Generation == s.Generation {
		t.Errorf("Replace = %+v, want the same ID and a new generation (old %d)", r, s.Generation)
	}
	l, err := c.AddFunctionResults(ctx, canvas, s.ID, []client.TLID{6}, []client.FunctionResult{
		{TLID: 5, ExprID: 42, FnName: "HttpClient.get", ArgHash: "a1b2", Value: client.MustValue("layered")},
	})
	if err != nil {
		t.Fatalf("AddFunctionResults: %v", err)
	}
	if l.ID != s.ID || l.N != 1 {
		t.Errorf("AddFunctionResults = %+v, want layer 1 of %s", l, s.ID)
	}
	got, gen, err := c.Get(ctx, canvas, s.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	var input, result string
	_ = got.Input[0].Value.Decode(&input)
	_ = got.FunctionResults[0].Value.Decode(&result)
	if input != "replaced" || result != "layered" || gen != r.Generation {
		t.Errorf("Get = input %q, result %q, generation %d; want replaced, layered, %d", input, result, gen, r.Generation)
	}
	if _, err := c.AddFunctionResults(ctx, canvas, client.NewTraceID(time.Now()), nil, []client.FunctionResult{{TLID: 5, FnName: "f"}}); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("AddFunctionResults to a missing trace = %v, want ErrNotFound", err)
	}
}

func TestHolds(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	c := g.newClient(t)
	ctx := t.Context()
	canvas := newCanvas()
	s, err := c.Save(ctx, canvas, sampleTrace(3))
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	h, err := c.Hold(ctx, canvas, s.ID, "bug 12")
	if err != nil {
		t.Fatalf("Hold: %v", err)
	}
	if h.ID != s.ID || h.Reason != "bug 12" || h.HeldAt.IsZero() {
		t.Errorf("Hold = %+v, want %s held for bug 12", h, s.ID)
	}
	hs, err := c.Holds(ctx, canvas)
	if err != nil {
		t.Fatalf("Holds: %v", err)
	}
	if diff := cmp.Diff([]client.Hold{h}, hs); diff != "" {
		t.Errorf("Holds (-want +got):\n%s", diff)
	}
	list, err := c.Recent(ctx, canvas, 3, 0)
	if err != nil || len(list) != 1 || !list[0].Held {
		t.Errorf("Recent = %+v, %v; want the one trace, held", list, err)
	}
	if _, err := c.Replace(ctx, canvas, s.ID, sampleTrace(3), 0); !errors.Is(err, client.ErrPrecondition) {
		t.Errorf("Replace of a held trace = %v, want ErrPrecondition", err)
	}
	if err := c.Release(ctx, canvas, s.ID); err != nil {
		t.Fatalf("Release: %v", err)
	}
	if hs, err := c.Holds(ctx, canvas); err != nil || len(hs) != 0 {
		t.Errorf("Holds after Release = %+v, %v; want none", hs, err)
	}
	if _, err := c.Hold(ctx, canvas, client.NewTraceID(time.Now()), ""); !errors.Is(err, client.ErrNotFound) {
		t.Errorf("Hold of a missing trace = %v, want ErrNotFound", err)
	}
}

// TestKeptSearchHoldEndsPolicy: the client reads why traces are kept (in
// lists and the single read), pages a search, holds with an end and reads
// the holder, and reads and sets a canvas's keep-N, against the gateway.
func TestKeptSearchHoldEndsPolicy(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	c := g.newClient(t)
	ctx := t.Context()
	canvas := newCanvas()
	var ids []client.TraceID
	for i := range 3 {
		s, err := c.Save(ctx, canvas, sampleTrace(3, client.TLID(40+i)))
		if err != nil {
			t.Fatalf("Save: %v", err)
		}
		ids = append(ids, s.ID)
	}
	list, err := c.Recent(ctx, canvas, 3, 0)
	if err != nil || len(list) != 3 || !slices.Equal(list[0].Kept.Because, []string{"latest", "recent"}) ||
		!slices.Equal(list[0].Kept.LatestFor, []client.TLID{3, 42}) || !list[0].Kept.ExpiresAfter.IsZero() {
		t.Fatalf("Recent = %+v, %v; want the newest latest for 3 and 42", list, err)
	}

	var got []client.TraceID
	q := client.SearchQuery{Limit: 2}
	for pages := 1; ; pages++ {
		p, err := c.Search(ctx, canvas, q)
		if err != nil || pages > 2 {
			t.Fatalf("Search page %d = %+v, %v", pages, p, err)
		}
		for _, s := range p.Traces {
			got = append(got, s.ID)
		}
		if p.NextCursor == "" {
			break
		}
		q.Cursor = p.NextCursor
	}
	if want := []client.TraceID{ids[2], ids[1], ids[0]}; !slices.Equal(got, want) {
		t.Errorf("Search pages = %v, want %v", got, want)
	}
	if p, err := c.Search(ctx, canvas, client.SearchQuery{TLID: 41, Prefix: string(ids[1])[:8]}); err != nil || len(p.Traces) != 1 || p.Traces[0].ID != ids[1] {
		t.Errorf("Search tlid 41 = %+v, %v; want %s", p, err, ids[1])
	}
	if _, err := c.Search(ctx, canvas, client.SearchQuery{Cursor: "not-a-cursor"}); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("Search with a bad cursor = %v, want ErrInvalid", err)
	}

	before := time.Now()
	h, err := c.HoldWith(ctx, canvas, ids[0], client.HoldOptions{Reason: "bug 7", For: 72 * time.Hour})
	if err != nil || h.HeldBy != "client-test" || h.Until.Before(before.Add(72*time.Hour-time.Second)) || h.Until.After(time.Now().Add(72*time.Hour+time.Second)) {
		t.Fatalf("HoldWith 72h = %+v, %v", h, err)
	}
	if hs, err := c.Holds(ctx, canvas); err != nil || len(hs) != 1 || !hs[0].Until.Equal(h.Until) || hs[0].HeldBy != "client-test" {
		t.Errorf("Holds = %+v, %v; want the hold with its end and holder", hs, err)
	}
	_, _, k, err := c.GetKept(ctx, canvas, ids[0])
	if err != nil || !slices.Equal(k.Because, []string{"latest", "recent", "held"}) || !slices.Equal(k.LatestFor, []client.TLID{3, 40}) || !k.ExpiresAfter.IsZero() {
		t.Errorf("GetKept of the held trace = %+v, %v", k, err)
	}
	if h, err := c.HoldWith(ctx, canvas, ids[0], client.HoldOptions{NoEnd: true}); err != nil || !h.Until.IsZero() || h.Reason != "bug 7" {
		t.Errorf("HoldWith NoEnd = %+v, %v; want no end, the reason kept", h, err)
	}
	if _, err := c.HoldWith(ctx, canvas, ids[0], client.HoldOptions{Until: time.Now().Add(-time.Hour)}); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("HoldWith an end in the past = %v, want ErrInvalid", err)
	}

	if p, err := c.Policy(ctx, canvas); err != nil || p != (client.CanvasPolicy{KeepPerToplevel: 10, IsDefault: true}) {
		t.Errorf("Policy = %+v, %v; want the default 10", p, err)
	}
	if p, err := c.SetPolicy(ctx, canvas, 25); err != nil || p != (client.CanvasPolicy{KeepPerToplevel: 25}) {
		t.Errorf("SetPolicy(25) = %+v, %v", p, err)
	}
	if p, err := c.SetPolicy(ctx, canvas, 0); err != nil || p != (client.CanvasPolicy{KeepPerToplevel: 10, IsDefault: true}) {
		t.Errorf("SetPolicy(default) = %+v, %v", p, err)
	}
	if _, err := c.SetPolicy(ctx, canvas, 1001); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("SetPolicy(1001) = %v, want ErrInvalid", err)
	}
}

func TestUnmatched(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	c := g.newClient(t)
	ctx := t.Context()
	canvas := newCanvas()
	u := client.Unmatched{Module: "HTTP", Path: "/users/1", Modifier: "GET",
		Input: []client.InputVar{{Name: "request", Value: client.MustValue(map[string]any{"path": "/users/1"})}}}
	id, err := c.SaveUnmatched(ctx, canvas, u)
	if err != nil {
		t.Fatalf("SaveUnmatched: %v", err)
	}
	list, err := c.Unmatched(ctx, canvas)
	if err != nil {
		t.Fatalf("Unmatched: %v", err)
	}
	if len(list) != 1 || list[0].ID != id || list[0].Module != "HTTP" || list[0].Path != "/users/1" || list[0].Modifier != "GET" || list[0].Timestamp.IsZero() {
		t.Fatalf("Unmatched = %+v, want the one request %s", list, id)
	}
	tid, err := c.Promote(ctx, canvas, id, 77)
	if err != nil {
		t.Fatalf("Promote: %v", err)
	}
	tr, _, err := c.Get(ctx, canvas, tid)
	if err != nil {
		t.Fatalf("Get promoted: %v", err)
	}
	if tr.RootTLID != 77 || len(tr.Input) != 1 || !bytes.Equal(tr.Input[0].Value, u.Input[0].Value) {
		t.Errorf("promoted trace = %+v, want root 77 with the request's input", tr)
	}
	if list, err := c.Unmatched(ctx, canvas); err != nil || len(list) != 0 {
		t.Errorf("Unmatched after Promote = %+v, %v; want none", list, err)
	}
	if _, err := c.SaveUnmatched(ctx, canvas, u); err != nil {
		t.Fatalf("SaveUnmatched again: %v", err)
	}
	if err := c.DismissUnmatched(ctx, canvas, "HTTP", "/users/1", "GET"); err != nil {
		t.Fatalf("DismissUnmatched: %v", err)
	}
	if list, err := c.Unmatched(ctx, canvas); err != nil || len(list) != 0 {
		t.Errorf("Unmatched after DismissUnmatched = %+v, %v; want none", list, err)
	}
	if err := c.DismissUnmatched(ctx, canvas, "", "/x", ""); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("DismissUnmatched without module = %v, want ErrInvalid", err)
	}
}

func TestTypedErrors(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	ctx := t.Context()
	canvas, other := newCanvas(), newCanvas()
	admin := g.newClient(t)
	s, err := admin.Save(ctx, canvas, sampleTrace(1))
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	big := sampleTrace(1)
	big.Input[0].Value = client.MustValue(strings.Repeat("x", 2<<20))
	cases := []struct {
		name     string
		call     func() error
		want     error
		wantCode string
	}{
		{"no token", func() error {
			_, err := client.New(g.URL, "").Recent(ctx, canvas, 1, 0)
			return err
		}, client.ErrUnauthenticated, "unauthenticated"},
		{"bad token", func() error {
			_, err := client.New(g.URL, "tgw1.nope.nope").Recent(ctx, canvas, 1, 0)
			return err
		}, client.ErrUnauthenticated, "unauthenticated"},
		{"executor reads", func() error {
			_, _, err := client.New(g.URL, token(t, httpapi.RoleExecutor, "")).Get(ctx, canvas, s.ID)
			return err
		}, client.ErrPermission, "permission_denied"},
		{"other canvas", func() error {
			_, err := client.New(g.URL, token(t, httpapi.RoleExecutor, other)).Save(ctx, canvas, sampleTrace(1))
			return err
		}, client.ErrPermission, "permission_denied"},
		{"bad canvas ID", func() error {
			_, err := admin.Recent(ctx, "Not-A-UUID/..", 1, 0)
			return err
		}, client.ErrInvalid, "invalid_argument"},
		{"missing trace", func() error {
			_, _, err := admin.Get(ctx, canvas, client.NewTraceID(time.Now()))
			return err
		}, client.ErrNotFound, "not_found"},
		{"too large", func() error {
			_, err := admin.Save(ctx, canvas, big)
			return err
		}, client.ErrTooLarge, "payload_too_large"},
	}
	for _, tc := range cases {
		err := tc.call()
		var apiErr *client.APIError
		if !errors.Is(err, tc.want) || !errors.As(err, &apiErr) || apiErr.Code != tc.wantCode {
			t.Errorf("%s: err = %v, want %v with code %s", tc.name, err, tc.want, tc.wantCode)
		}
	}
	if _, err := admin.Save(ctx, canvas, &client.Trace{ID: "nope", RootTLID: 1}); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("Save with a malformed ID = %v, want ErrInvalid (before any request)", err)
	}
}

// failSaves answers 503 to the first n saves. With passThrough the save
// reaches the gateway first and only its answer is replaced (a response
// lost on the way back).
func failSaves(n int32, passThrough bool, seen *atomic.Int32) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/traces") {
				next.ServeHTTP(w, r)
				return
			}
			if seen.Add(1) > n {
				next.ServeHTTP(w, r)
				return
			}
			if passThrough {
				next.ServeHTTP(discardWriter{h: http.Header{}}, r)
			}
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":{"code":"unavailable","message":"try again"}}`))
		})
	}
}

type discardWriter struct{ h http.Header }

func (d discardWriter) Header() http.Header         { return d.h }
func (d discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d discardWriter) WriteHeader(int)             {}

func TestSaveRetries(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name        string
		passThrough bool
		wantCreated bool
	}{
		{"rejected", false, true},
		{"answer lost", true, false}, // the first try landed: the retry gets 200
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var seen atomic.Int32
			g := newGateway(t, failSaves(2, tc.passThrough, &seen))
			c := g.newClient(t)
			ctx := t.Context()
			canvas := newCanvas()
			s, err := c.Save(ctx, canvas, sampleTrace(9))
			if err != nil {
				t.Fatalf("Save: %v", err)
			}
			if s.Created != tc.wantCreated || seen.Load() != 3 {
				t.Errorf("Save = %+v after %d tries; want created=%v after 3", s, seen.Load(), tc.wantCreated)
			}
			list, err := c.Recent(ctx, canvas, 9, 0)
			if err != nil {
				t.Fatalf("Recent: %v", err)
			}
			if len(list) != 1 || list[0].ID != s.ID {
				t.Errorf("Recent = %+v, want exactly the one saved trace %s", list, s.ID)
			}
		})
	}
}

func TestSaveRetriesExhausted(t *testing.T) {
	t.Parallel()
	var seen atomic.Int32
	g := newGateway(t, failSaves(1000, false, &seen))
	c := g.newClient(t, client.WithRetry(3, time.Millisecond, time.Millisecond))
	_, err := c.Save(t.Context(), newCanvas(), sampleTrace(9))
	if !errors.Is(err, client.ErrUnavailable) || seen.Load() != 3 {
		t.Errorf("Save = %v after %d tries, want ErrUnavailable after 3", err, seen.Load())
	}
}

func TestNetworkError(t *testing.T) {
	t.Parallel()
	// A closed listener: nothing accepts, every try is a network error.
	c := client.New("http://127.0.0.1:1", "", client.WithRetry(2, time.Millisecond, time.Millisecond))
	if _, err := c.Save(t.Context(), newCanvas(), sampleTrace(1)); !errors.Is(err, client.ErrUnavailable) {
		t.Errorf("Save to a closed port = %v, want ErrUnavailable", err)
	}
}
