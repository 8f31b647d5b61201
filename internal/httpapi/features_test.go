package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/canvases"
	"github.com/tracegw/tracegw/internal/holds"
	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
	"github.com/tracegw/tracegw/internal/ttl"
	"github.com/tracegw/tracegw/testutil"
)

// fullGateway is the whole system on one emulator clock: the API with
// bearer tokens, the trace store, holds and canvas settings, and a managed
// GC that runs a pass at every one-hour step of the clock, before the
// bucket's lifecycle rule (7 days since customTime) is applied.
type fullGateway struct {
	URL    string
	DB     *index.DB
	dbURL  string
	GCS    *objstore.GCS
	Emu    *testutil.Emu
	GC     *ttl.GC
	key    []byte
	Policy ttl.Policy
}

// lifecycleLag is how late the emulator's lifecycle rule may act: it is
// applied after each step of the clock.
const lifecycleLag = time.Hour

func newFullGateway(t *testing.T) *fullGateway {
	t.Helper()
	ctx := t.Context()
	dbURL := testutil.PG(t)
	db, err := index.Open(ctx, dbURL, index.Options{MaxConns: 8})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	emu := testutil.EmulatorWithOptions(t, emulator.Options{Step: lifecycleLag})
	gcs := objstore.New(emu.Client, emu.Bucket)
	p := ttl.DefaultPolicy()
	if _, err := ttl.SetupBucket(ctx, gcs, p, ttl.BucketOptions{}, false); err != nil {
		t.Fatalf("setup bucket: %v", err)
	}
	hs := holds.New(gcs, db, holds.Options{Now: emu.E.Now})
	gc, err := ttl.New(gcs, db, p, emu.E.Now, nil, nil, ttl.Options{Bucket: gcs, Holds: hs, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	svc := tracestore.New(gcs, db, tracestore.Options{Now: emu.E.Now, Renewer: gc, Holds: hs, Policy: gc})
	jobs := canvases.New(gcs, db, canvases.Options{Now: emu.E.Now, Holds: hs, Policy: gc, Renewer: gc})
	key := []byte("0123456789abcdef0123456789abcdef-features")
	api := httpapi.New(httpapi.Options{
		Service: svc, Holds: hs, Canvases: jobs, Auth: &httpapi.BearerAuth{Key: key},
		Limits: traces.Limits{MaxBody: 1 << 20},
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	emu.E.SetHooks(emulator.Hooks{OnStep: gc.Step})
	hs2 := serveChecked(t, api.Handler())
	return &fullGateway{URL: hs2.URL, DB: db, dbURL: dbURL, GCS: gcs, Emu: emu, GC: gc, key: key, Policy: p}
}

// token mints a token for role on every canvas, with subject sub.
func (g *fullGateway) token(t testing.TB, role httpapi.Role, sub string) string {
	t.Helper()
	tok, err := httpapi.Sign(g.key, httpapi.Claims{Role: role, Subject: sub, IssuedAt: time.Now(), Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (g *fullGateway) do(t testing.TB, method, path, tok, body string) (int, http.Header, []byte) {
	t.Helper()
	ct := ""
	if body != "" {
		ct = "application/json"
	}
	return call(t, method, g.URL+path, ct, []byte(body), bearer(tok)...)
}

// save stores a trace of root (and tlids) at the emulator's now, as an
// executor.
func (g *fullGateway) save(t testing.TB, _, c string, root int, tlids ...int) string {
	t.Helper()
	tok := g.token(t, httpapi.RoleExecutor, "executor")
	var tl []string
	for _, x := range tlids {
		tl = append(tl, fmt.Sprintf("%q", fmt.Sprint(x)))
	}
	status, _, b := g.do(t, "POST", "/v1/canvases/"+c+"/traces", tok, fmt.Sprintf(`{"rootTLID":"%d","tlids":[%s]}`, root, strings.Join(tl, ",")))
	if status != http.StatusCreated {
		t.Fatalf("save: %d %s", status, b)
	}
	var r saveResp
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.TraceID
}

func (g *fullGateway) advance(t testing.TB, d time.Duration) {
	t.Helper()
	if d <= 0 {
		return
	}
	if _, err := g.Emu.E.Advance(t.Context(), d); err != nil {
		t.Fatalf("advance %s: %v", d, err)
	}
}

// keptItem is a list item with why it is kept.
type keptItem struct {
	TraceID      string   `json:"traceID"`
	Held         bool     `json:"held"`
	KeptBecause  []string `json:"keptBecause"`
	LatestFor    []string `json:"latestFor"`
	ExpiresAfter *string  `json:"expiresAfter"`
}

func (i keptItem) expires(t testing.TB) time.Time {
	t.Helper()
	if i.ExpiresAfter == nil {
		t.Fatalf("%s has no expiresAfter", i.TraceID)
	}
	at, err := time.Parse(time.RFC3339, *i.ExpiresAfter)
	if err != nil {
		t.Fatal(err)
	}
	return at
}

func (g *fullGateway) list(t testing.TB, tok, c string, tlid, limit int) []keptItem {
	t.Helper()
	status, _, b := g.do(t, "GET", fmt.Sprintf("/v1/canvases/%s/toplevels/%d/traces?limit=%d", c, tlid, limit), tok, "")
	if status != http.StatusOK {
		t.Fatalf("list: %d %s", status, b)
	}
	var r struct{ Traces []keptItem }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.Traces
}

// present reads a trace: true when it is there, false on 404.
func (g *fullGateway) present(t testing.TB, tok, c, id string) bool {
	t.Helper()
	status, _, b := g.do(t, "GET", "/v1/canvases/"+c+"/traces/"+id, tok, "")
	if status != http.StatusOK && status != http.StatusNotFound {
		t.Fatalf("get %s: %d %s", id, status, b)
	}
	return status == http.StatusOK
}

func (g *fullGateway) customTime(t testing.TB, c, id string) time.Time {
	t.Helper()
	cv, _ := traces.ParseCanvasID(c)
	tid, _ := traces.ParseTraceID(id)
	info, err := g.GCS.Stat(t.Context(), traces.TraceKey(cv, tid))
	if err != nil {
		t.Fatal(err)
	}
	return info.CustomTime
}

// TestKeptBecauseAndExpiresAfterOnTheClock: a toplevel's newest 10 traces
// are listed latest (for it) and recent, without an end; the two older ones
// recent, with expiresAfter T their customTime plus the retention; the
// single read says the same in its headers. Such a trace is still there
// just before T and gone once T and the lifecycle lag have passed; the
// latest stay, however old.
func TestKeptBecauseAndExpiresAfterOnTheClock(t *testing.T) {
	t.Parallel()
	g := newFullGateway(t)
	ed := g.token(t, httpapi.RoleEditor, "editor")
	c := "7d3f5a1c-0000-4000-8000-0000000000a1"
	var ids []string // oldest first
	for range 12 {
		ids = append(ids, g.save(t, ed, c, 1, 50))
		g.advance(t, time.Hour)
	}
	list := g.list(t, ed, c, 1, 100)
	if len(list) != 12 {
		t.Fatalf("listed %d traces, want 12", len(list))
	}
	for rank, it := range list {
		want := []string{"latest", "recent"}
		if rank >= 10 {
			want = []string{"recent"}
		}
		if it.TraceID != ids[11-rank] || !slices.Equal(it.KeptBecause, want) {
			t.Errorf("rank %d: %s keptBecause %v, want %s %v", rank+1, it.TraceID, it.KeptBecause, ids[11-rank], want)
		}
		if rank < 10 && (it.ExpiresAfter != nil || !slices.Equal(it.LatestFor, []string{"1", "50"})) {
			t.Errorf("rank %d: latestFor %v expiresAfter %v, want [1 50] and null", rank+1, it.LatestFor, it.ExpiresAfter)
		}
		if rank >= 10 && len(it.LatestFor) != 0 {
			t.Errorf("rank %d: latestFor %v, want none", rank+1, it.LatestFor)
		}
	}
	eleventh := list[10]
	T := eleventh.expires(t)
	if ct := g.customTime(t, c, eleventh.TraceID); !T.Equal(ct.Add(g.Policy.Retention)) {
		t.Errorf("expiresAfter %s, want the object's customTime %s + 7d", T, ct)
	}
	_, h, _ := g.do(t, "GET", "/v1/canvases/"+c+"/traces/"+eleventh.TraceID, ed, "")
	if h.Get("X-Kept-Because") != "recent" || h.Get("X-Expires-After") != *eleventh.ExpiresAfter || h.Get("X-Latest-For") != "" {
		t.Errorf("read of rank 11: headers %v", h)
	}
	_, h, _ = g.do(t, "GET", "/v1/canvases/"+c+"/traces/"+list[0].TraceID, ed, "")
	if h.Get("X-Kept-Because") != "latest, recent" || h.Get("X-Latest-For") != "1, 50" || len(h.Values("X-Expires-After")) != 0 {
		t.Errorf("read of rank 1: headers %v", h)
	}

	g.advance(t, T.Sub(g.Emu.E.Now())-lifecycleLag)
	if !g.present(t, ed, c, eleventh.TraceID) {
		t.Fatalf("rank 11 is gone at %s, before its expiresAfter %s", g.Emu.E.Now(), T)
	}
	g.advance(t, 2*lifecycleLag)
	if g.present(t, ed, c, eleventh.TraceID) {
		t.Errorf("rank 11 is still there at %s, past its expiresAfter %s and the lifecycle lag", g.Emu.E.Now(), T)
	}
	g.advance(t, 30*ttl.Day)
	for rank, it := range list[:10] {
		if !g.present(t, ed, c, it.TraceID) {
			t.Errorf("latest rank %d is gone after 37 days", rank+1)
		}
	}
	// Rank 12's object is gone too; its rows stay until its deletion
	// notification (none here) or a read: listed with nothing keeping it.
	for rank, it := range g.list(t, ed, c, 1, 100) {
		switch {
		case rank < 10 && (!slices.Contains(it.KeptBecause, "latest") || it.ExpiresAfter != nil):
			t.Errorf("after 37 days: rank %d keptBecause %v expiresAfter %v", rank+1, it.KeptBecause, it.ExpiresAfter)
		case rank >= 10 && (it.TraceID != list[11].TraceID || len(it.KeptBecause) != 0 || !it.expires(t).Before(g.Emu.E.Now())):
			t.Errorf("after 37 days: rank %d is %s keptBecause %v expiresAfter %v", rank+1, it.TraceID, it.KeptBecause, it.ExpiresAfter)
		}
	}
}

// holdResp is PUT …/hold's answer and a holds list item.
type holdResp struct {
	TraceID string  `json:"traceID"`
	Reason  string  `json:"reason"`
	HeldAt  string  `json:"heldAt"`
	Until   *string `json:"until"`
	HeldBy  *string `json:"heldBy"`
}

// TestHoldUntilEndsByItself: a hold for 72h, extended by a repeat to 96h,
// is listed with its end and holder; the trace is listed held without an
// end of its own. GC releases the hold at its end; the trace then gets a
// fresh retention period from the release: there until that period's
// end, gone after it.
func TestHoldUntilEndsByItself(t *testing.T) {
	t.Parallel()
	g := newFullGateway(t)
	ed := g.token(t, httpapi.RoleEditor, "alice")
	other := g.token(t, httpapi.RoleEditor, "bob")
	c := "7d3f5a1c-0000-4000-8000-0000000000a2"
	var ids []string
	for range 12 {
		ids = append(ids, g.save(t, ed, c, 1))
		g.advance(t, time.Hour)
	}
	target := ids[0] // rank 12: not a keeper
	start := g.Emu.E.Now()
	status, _, b := g.do(t, "PUT", "/v1/canvases/"+c+"/traces/"+target+"/hold", ed, `{"reason":"incident 7","until":"72h"}`)
	var h holdResp
	if status != http.StatusOK || json.Unmarshal(b, &h) != nil || h.Until == nil || h.HeldBy == nil || *h.HeldBy != "alice" || h.Reason != "incident 7" {
		t.Fatalf("hold: %d %s", status, b)
	}
	status, _, b = g.do(t, "PUT", "/v1/canvases/"+c+"/traces/"+target+"/hold", other, `{"until":"4d"}`)
	if status != http.StatusOK || json.Unmarshal(b, &h) != nil || h.Until == nil || *h.HeldBy != "alice" || h.Reason != "incident 7" {
		t.Fatalf("repeated hold: %d %s", status, b)
	}
	until, err := time.Parse(time.RFC3339, *h.Until)
	if err != nil || until.Sub(start) < 96*time.Hour || until.Sub(start) > 96*time.Hour+time.Minute {
		t.Fatalf("until %v (%v), want 96h after %s", h.Until, err, start)
	}
	status, _, b = g.do(t, "GET", "/v1/canvases/"+c+"/holds", ed, "")
	var hl struct{ Holds []holdResp }
	if status != http.StatusOK || json.Unmarshal(b, &hl) != nil || len(hl.Holds) != 1 || hl.Holds[0].Until == nil || *hl.Holds[0].Until != *h.Until || *hl.Holds[0].HeldBy != "alice" {
		t.Fatalf("holds: %d %s", status, b)
	}
	it := g.list(t, ed, c, 1, 100)[11]
	if it.TraceID != target || !slices.Equal(it.KeptBecause, []string{"recent", "held"}) || it.ExpiresAfter != nil {
		t.Errorf("held trace listed as %+v", it)
	}

	g.advance(t, until.Sub(g.Emu.E.Now())+lifecycleLag)
	status, _, b = g.do(t, "GET", "/v1/canvases/"+c+"/holds", ed, "")
	if status != http.StatusOK || json.Unmarshal(b, &hl) != nil || len(hl.Holds) != 0 {
		t.Fatalf("holds after the end: %d %s", status, b)
	}
	it = g.list(t, ed, c, 1, 100)[11]
	T := it.expires(t)
	if it.TraceID != target || it.Held || !slices.Equal(it.KeptBecause, []string{"recent"}) || T.Before(until.Add(g.Policy.Retention)) {
		t.Errorf("after its hold ended: %+v (expires %s), want recent until at least %s", it, T, until.Add(g.Policy.Retention))
	}
	g.advance(t, T.Sub(g.Emu.E.Now())-lifecycleLag)
	if !g.present(t, ed, c, target) {
		t.Fatalf("the released trace is gone at %s, before the end of its fresh retention %s", g.Emu.E.Now(), T)
	}
	g.advance(t, 2*lifecycleLag)
	if g.present(t, ed, c, target) {
		t.Errorf("the released trace outlived its fresh retention (%s)", T)
	}
}

// searchResp is a search page.
type searchResp struct {
	Traces     []keptItem
	NextCursor *string `json:"nextCursor"`
}

func (g *fullGateway) search(t testing.TB, tok, c string, q url.Values) searchResp {
	t.Helper()
	status, _, b := g.do(t, "GET", "/v1/canvases/"+c+"/traces?"+q.Encode(), tok, "")
	if status != http.StatusOK {
		t.Fatalf("search %s: %d %s", q.Encode(), status, b)
	}
	var r searchResp
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

// pageAll pages a search to its end and returns the IDs in order.
func (g *fullGateway) pageAll(t testing.TB, tok, c string, q url.Values) []string {
	t.Helper()
	var out []string
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("search does not end")
		}
		r := g.search(t, tok, c, q)
		for _, it := range r.Traces {
			out = append(out, it.TraceID)
		}
		if r.NextCursor == nil {
			return out
		}
		q.Set("cursor", *r.NextCursor)
	}
}

// seedIndex writes n traces of canvas c into the index only (search reads
// nothing else), timestamped from start one every step, toplevel 1 + i%100
// each, and returns their IDs oldest first.
func (g *fullGateway) seedIndex(t *testing.T, c string, n int, start time.Time, step time.Duration) ([]traces.TraceID, []time.Time) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, g.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	cv, _ := traces.ParseCanvasID(c)
	ids, tss := make([]traces.TraceID, n), make([]time.Time, n)
	for i := range n {
		tss[i] = start.Add(time.Duration(i) * step).Truncate(time.Millisecond)
		ids[i] = traces.NewTraceID(tss[i])
	}
	rows := func(table string) pgx.CopyFromSource {
		return pgx.CopyFromSlice(n, func(i int) ([]any, error) {
			root := int64(1 + i%100)
			if table == "traces" {
				return []any{[16]byte(cv), [16]byte(ids[i]), root, []int64{root}, tss[i], int64(i + 1), tss[i]}, nil
			}
			return []any{[16]byte(cv), root, [16]byte(ids[i]), tss[i], root}, nil
		})
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"traces"}, []string{"canvas_id", "trace_id", "root_tlid", "tlids", "ts", "generation", "custom_time"}, rows("traces")); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{"trace_tlids"}, []string{"canvas_id", "tlid", "trace_id", "ts", "root_tlid"}, rows("trace_tlids")); err != nil {
		t.Fatal(err)
	}
	return ids, tss
}

// TestSearchPagesWhileSavesContinue: 10,000 traces of a canvas page out
// newest first, in time order, each exactly once, while traces keep being
// saved into the same canvas; a time window, a toplevel and a prefix each
// page out exactly their traces.
func TestSearchPagesWhileSavesContinue(t *testing.T) {
	t.Parallel()
	g := newFullGateway(t)
	ed := g.token(t, httpapi.RoleEditor, "editor")
	ex := g.token(t, httpapi.RoleExecutor, "executor")
	c := "7d3f5a1c-0000-4000-8000-0000000000a3"
	start := g.Emu.E.Now().Add(-48 * time.Hour)
	ids, tss := g.seedIndex(t, c, 10_000, start, 17*time.Second)

	var (
		wg    sync.WaitGroup
		stop  = make(chan struct{})
		saved sync.Map
		n     atomic.Int32
	)
	wg.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			// New traces, and some backdated into the seeded range.
			body := `{"rootTLID":"7"}`
			if n.Load()%3 == 1 {
				body = fmt.Sprintf(`{"rootTLID":"7","timestamp":%q}`, start.Add(time.Duration(n.Load())*time.Minute).Format(time.RFC3339Nano))
			}
			status, _, b := g.do(t, "POST", "/v1/canvases/"+c+"/traces", ex, body)
			if status != http.StatusCreated {
				t.Errorf("save while paging: %d %s", status, b)
				return
			}
			var r saveResp
			_ = json.Unmarshal(b, &r)
			saved.Store(r.TraceID, true)
			n.Add(1)
		}
	})
	// Let a few saves land before and while paging.
	testutil.WaitFor(t, 10*time.Second, "3 calls", func() bool { return n.Load() >= 3 })
	got := g.pageAll(t, ed, c, url.Values{"limit": {"700"}})
	close(stop)
	wg.Wait()

	seeded := map[string]bool{}
	for _, id := range ids {
		seeded[id.String()] = true
	}
	seen := map[string]bool{}
	for i, id := range got {
		if seen[id] {
			t.Fatalf("trace %s listed twice", id)
		}
		seen[id] = true
		if _, ok := saved.Load(id); !seeded[id] && !ok {
			t.Errorf("listed %s, which nobody saved", id)
		}
		if i > 0 && strings.Compare(got[i-1], id) <= 0 {
			t.Fatalf("not newest first at %d: %s then %s", i, got[i-1], id)
		}
	}
	for _, id := range ids {
		if !seen[id.String()] {
			t.Errorf("seeded trace %s missing from the pages", id)
		}
	}
	t.Logf("paged %d traces (%d seeded) while %d were saved", len(got), len(ids), n.Load())

	// A time window: [since, until) on the IDs' embedded times.
	since, until := tss[2000].Add(time.Millisecond/2), tss[7000]
	var want []string
	for i := len(ids) - 1; i >= 0; i-- {
		if !tss[i].Before(since.Truncate(time.Millisecond)) && tss[i].Before(until) {
			want = append(want, ids[i].String())
		}
	}
	win := g.pageAll(t, ed, c, url.Values{"since": {since.Format(time.RFC3339Nano)}, "until": {until.Format(time.RFC3339Nano)}, "limit": {"1000"}})
	var winSeeded []string
	for _, id := range win {
		if seeded[id] {
			winSeeded = append(winSeeded, id)
		}
	}
	if !slices.Equal(winSeeded, want) {
		t.Errorf("window [%s, %s): %d seeded traces, want %d", since, until, len(winSeeded), len(want))
	}
	// One toplevel: its 100 traces, in pages of 37.
	var tl5 []string
	for i := len(ids) - 1; i >= 0; i-- {
		if i%100 == 4 {
			tl5 = append(tl5, ids[i].String())
		}
	}
	if got := g.pageAll(t, ed, c, url.Values{"tlid": {"5"}, "limit": {"37"}}); !slices.Equal(got, tl5) {
		t.Errorf("toplevel 5: %d traces, want its %d", len(got), len(tl5))
	}
	// A prefix: every trace whose ID starts with the first 9 hex digits of one.
	p := strings.ToUpper(ids[5000].String()[:10]) // "xxxxxxxx-x", any case
	var pre []string
	for i := len(ids) - 1; i >= 0; i-- {
		if strings.HasPrefix(ids[i].String(), strings.ToLower(p)) {
			pre = append(pre, ids[i].String())
		}
	}
	byPrefix := g.pageAll(t, ed, c, url.Values{"prefix": {p}, "limit": {"2"}})
	var preSeeded []string
	for _, id := range byPrefix {
		if !strings.HasPrefix(id, strings.ToLower(p)) {
			t.Errorf("prefix %s listed %s", p, id)
		}
		if seeded[id] {
			preSeeded = append(preSeeded, id)
		}
	}
	if len(pre) == 0 || !slices.Equal(preSeeded, pre) {
		t.Errorf("prefix %s: %v, want %v", p, preSeeded, pre)
	}
}

// policyResp is the canvas policy answer.
type policyResp struct {
	KeepPerToplevel int   `json:"keepPerToplevel"`
	IsDefault       bool  `json:"isDefault"`
	RenewalPending  *bool `json:"renewalPending"`
}

func (g *fullGateway) putPolicy(t testing.TB, tok, c, body string) policyResp {
	t.Helper()
	status, _, b := g.do(t, "PUT", "/v1/canvases/"+c+"/policy", tok, body)
	var p policyResp
	if status != http.StatusOK || json.Unmarshal(b, &p) != nil {
		t.Fatalf("put policy %s: %d %s", body, status, b)
	}
	return p
}

// TestCanvasKeepViaAPI: a canvas with a keep-N of 25 keeps its 25 newest
// traces of a toplevel through 30 days, and lists them latest; on another
// canvas, raising 10 → 25 renews ranks 11–25 before it answers, although
// they are older than retention − margin, and none of them is lost; reset
// to the default, the canvas keeps 10 again.
func TestCanvasKeepViaAPI(t *testing.T) {
	t.Parallel()
	g := newFullGateway(t)
	ed := g.token(t, httpapi.RoleEditor, "editor")
	admin := g.token(t, httpapi.RoleAdmin, "admin")
	own, raised := "7d3f5a1c-0000-4000-8000-0000000000a4", "7d3f5a1c-0000-4000-8000-0000000000a5"

	if p := g.putPolicy(t, admin, own, `{"keepPerToplevel":25}`); p.KeepPerToplevel != 25 || p.IsDefault || p.RenewalPending == nil || *p.RenewalPending {
		t.Errorf("PUT policy 25: %+v", p)
	}
	status, _, b := g.do(t, "GET", "/v1/canvases/"+raised+"/policy", ed, "")
	if status != http.StatusOK || string(b) != `{"keepPerToplevel":10,"isDefault":true}`+"\n" {
		t.Errorf("GET policy of a new canvas: %d %s", status, b)
	}
	var a, r []string // oldest first
	for range 30 {
		a = append(a, g.save(t, ed, own, 1))
		r = append(r, g.save(t, ed, raised, 1))
		g.advance(t, time.Hour)
	}
	for rank, it := range g.list(t, ed, own, 1, 30) {
		if latest := slices.Contains(it.KeptBecause, "latest"); latest != (rank < 25) {
			t.Errorf("own keep 25: rank %d keptBecause %v", rank+1, it.KeptBecause)
		}
	}
	// Five days on, ranks 11-25 of the other canvas (saved 11 to 25 hours
	// before) are older than retention - margin, not yet than retention:
	// GC renewed only its 10 keepers.
	g.advance(t, 5*ttl.Day)
	before := g.Emu.E.Now().Add(-(g.Policy.Retention - g.Policy.Margin))
	for rank := 11; rank <= 25; rank++ {
		if ct := g.customTime(t, raised, r[30-rank]); !ct.Before(before) {
			t.Fatalf("rank %d's customTime %s is not older than retention - margin (%s): the test proves nothing", rank, ct, before)
		}
	}
	putAt := g.Emu.E.Now().Truncate(time.Second)
	if p := g.putPolicy(t, admin, raised, `{"keepPerToplevel":25}`); p.KeepPerToplevel != 25 || p.IsDefault || *p.RenewalPending {
		t.Errorf("raise 10 → 25: %+v", p)
	}
	for rank := 1; rank <= 25; rank++ {
		if ct := g.customTime(t, raised, r[30-rank]); rank > 10 && ct.Before(putAt) {
			t.Errorf("rank %d not renewed by the raise: customTime %s, raised at %s", rank, ct, putAt)
		}
	}
	g.advance(t, 30*ttl.Day)
	for _, cv := range []struct {
		c   string
		ids []string
	}{{own, a}, {raised, r}} {
		for i, id := range cv.ids {
			rank := 30 - i
			if got := g.present(t, ed, cv.c, id); got != (rank <= 25) {
				t.Errorf("canvas %s after 35 days: rank %d present %v, want %v", cv.c, rank, got, rank <= 25)
			}
		}
	}
	if p := g.putPolicy(t, admin, own, `{"keepPerToplevel":null}`); p.KeepPerToplevel != 10 || !p.IsDefault || *p.RenewalPending {
		t.Errorf("reset: %+v", p)
	}
	g.advance(t, 8*ttl.Day)
	n := 0
	for _, id := range a {
		if g.present(t, ed, own, id) {
			n++
		}
	}
	if n != 10 {
		t.Errorf("after the reset to the default and 8 days: %d traces, want 10", n)
	}
}

// TestFeatureParametersRefused: every new parameter's bad values are a 4xx
// naming the field, and change nothing; the new routes apply roles.
func TestFeatureParametersRefused(t *testing.T) {
	t.Parallel()
	g := newFullGateway(t)
	ed := g.token(t, httpapi.RoleEditor, "editor")
	admin := g.token(t, httpapi.RoleAdmin, "admin")
	ex := g.token(t, httpapi.RoleExecutor, "executor")
	c := "7d3f5a1c-0000-4000-8000-0000000000a6"
	id := g.save(t, ed, c, 1)
	cv := "/v1/canvases/" + c
	now := g.Emu.E.Now()
	forged := "AQAAAAAAAAAAAAAAAAAAAAA" // version 1, but not a trace ID
	for _, tc := range []struct {
		name, method, path, tok, body string
		status                        int
		field                         string
	}{
		{"cursor not base64", "GET", cv + "/traces?cursor=%21%21", ed, "", 400, "cursor"},
		{"cursor too short", "GET", cv + "/traces?cursor=AQ", ed, "", 400, "cursor"},
		{"cursor forged", "GET", cv + "/traces?cursor=" + forged, ed, "", 400, "cursor"},
		{"prefix not hex", "GET", cv + "/traces?prefix=01xz", ed, "", 400, "prefix"},
		{"prefix too long", "GET", cv + "/traces?prefix=" + strings.Repeat("a", 33), ed, "", 400, "prefix"},
		{"since after until", "GET", cv + "/traces?since=2026-01-02T00:00:00Z&until=2026-01-01T00:00:00Z", ed, "", 400, "since"},
		{"since not a time", "GET", cv + "/traces?since=yesterday", ed, "", 400, "since"},
		{"until not a time", "GET", cv + "/traces?until=1700000000", ed, "", 400, "until"},
		{"limit 0", "GET", cv + "/traces?limit=0", ed, "", 400, "limit"},
		{"limit 1001", "GET", cv + "/traces?limit=1001", ed, "", 400, "limit"},
		{"limit x", "GET", cv + "/traces?limit=x", ed, "", 400, "limit"},
		{"tlid x", "GET", cv + "/traces?tlid=x", ed, "", 400, "tlid"},
		{"hold until past", "PUT", cv + "/traces/" + id + "/hold", ed, `{"until":"` + now.Add(-time.Hour).Format(time.RFC3339) + `"}`, 400, "until"},
		{"hold until too far", "PUT", cv + "/traces/" + id + "/hold", ed, `{"until":"` + now.Add(401*ttl.Day).Format(time.RFC3339) + `"}`, 400, "until"},
		{"hold for too long", "PUT", cv + "/traces/" + id + "/hold", ed, `{"until":"401d"}`, 400, "until"},
		{"hold for nothing", "PUT", cv + "/traces/" + id + "/hold", ed, `{"until":"0s"}`, 400, "until"},
		{"hold until soon", "PUT", cv + "/traces/" + id + "/hold", ed, `{"until":"soon"}`, 400, "until"},
		{"hold until a number", "PUT", cv + "/traces/" + id + "/hold", ed, `{"until":72}`, 400, "until"},
		{"hold reason too long", "PUT", cv + "/traces/" + id + "/hold", ed, `{"reason":"` + strings.Repeat("r", 1025) + `"}`, 413, "reason"},
		{"keep 0", "PUT", cv + "/policy", admin, `{"keepPerToplevel":0}`, 400, "keepPerToplevel"},
		{"keep 1001", "PUT", cv + "/policy", admin, `{"keepPerToplevel":1001}`, 400, "keepPerToplevel"},
		{"keep x", "PUT", cv + "/policy", admin, `{"keepPerToplevel":"x"}`, 400, "keepPerToplevel"},
		{"keep 2.5", "PUT", cv + "/policy", admin, `{"keepPerToplevel":2.5}`, 400, "keepPerToplevel"},
		{"keep misspelt", "PUT", cv + "/policy", admin, `{"keepPerToplevl":20}`, 400, "keepPerToplevl"},
		{"policy set by an editor", "PUT", cv + "/policy", ed, `{"keepPerToplevel":20}`, 403, ""},
		{"policy read by an executor", "GET", cv + "/policy", ex, "", 403, ""},
		{"search by an executor", "GET", cv + "/traces", ex, "", 403, ""},
		{"policy of a bad canvas", "GET", "/v1/canvases/NOT-A-UUID/policy", ed, "", 400, "canvasID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, _, b := g.do(t, tc.method, tc.path, tc.tok, tc.body)
			code, field := errorOf(t, b)
			if status != tc.status || field != tc.field || code == "" {
				t.Errorf("got %d %s field %q (%s), want %d field %q", status, code, field, b, tc.status, tc.field)
			}
		})
	}
	status, _, b := g.do(t, "GET", cv+"/holds", ed, "")
	if status != http.StatusOK || !strings.Contains(string(b), `"holds":[]`) {
		t.Errorf("holds after refused requests: %d %s", status, b)
	}
	status, _, b = g.do(t, "GET", cv+"/policy", ed, "")
	if status != http.StatusOK || !strings.Contains(string(b), `"isDefault":true`) {
		t.Errorf("policy after refused requests: %d %s", status, b)
	}
	// A token scoped to another canvas may not read or set this one's.
	scoped := mint(t, g.key, httpapi.RoleAdmin, "7d3f5a1c-0000-4000-8000-0000000000ff", time.Now())
	for _, m := range []string{"GET", "PUT"} {
		if status, _, _ := g.do(t, m, cv+"/policy", scoped, ""); status != http.StatusForbidden {
			t.Errorf("%s policy with another canvas's token: %d, want 403", m, status)
		}
	}
}
