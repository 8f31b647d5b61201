package ttl

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tracegw/tracegw/internal/traces"
)

// TestPassRenewsExactlyTheDueKeepers covers one canvas with every case a
// pass meets: old keepers (two shared by a second toplevel), fresh keepers,
// non-keepers, a held keeper, a keeper whose object is gone, and a deleted
// toplevel. Layers are covered by TestPassRenewsLayers: the emulator's
// filesystem backend cannot yet hold an object and objects under its name
// as a prefix ({trace} and {trace}/layers/…).
func TestPassRenewsExactlyTheDueKeepers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 24*time.Hour)
	ctx := t.Context()
	c := canvas(1)
	var a, b, f []traces.Record
	for i := range 12 {
		var extra []traces.TLID
		if i >= 10 {
			extra = []traces.TLID{4} // toplevel 4 keeps a[10], a[11] too
		}
		a = append(a, e.save(t, c, 0, 1, extra...))
	}
	for range 3 {
		b = append(b, e.save(t, c, 0, 2))
	}
	for range 2 {
		f = append(f, e.save(t, c, 0, 3))
	}
	e.hold(t, b[1])
	if err := e.gcs.Delete(ctx, traces.TraceKey(c, b[2].ID), 0); err != nil {
		t.Fatal(err)
	}
	if err := e.db.ForgetToplevel(ctx, c, 3, e.now()); err != nil {
		t.Fatal(err)
	}
	e.advance(t, 6*Day) // no lifecycle rule: nothing is deleted
	a = append(a, e.save(t, c, 0, 1), e.save(t, c, 0, 1))

	objs := newCounting(e.gcs)
	reg := prometheus.NewRegistry()
	g, err := New(objs, e.db, DefaultPolicy(), e.now, nil, reg, Options{Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := g.Pass(ctx, false)
	if err != nil {
		t.Fatalf("Pass: %v", err)
	}
	// b[1] is held, and renewed all the same: the index's held flag must
	// never be what keeps a keeper alive.
	want := map[string]int{traces.TraceKey(c, b[0].ID): 1, traces.TraceKey(c, b[1].ID): 1}
	for _, r := range a[4:12] {
		for _, k := range e.keys[r.ID] {
			want[k] = 1
		}
	}
	if diff := cmp.Diff(want, objs.counts()); diff != "" {
		t.Errorf("PATCHed objects (-want +got):\n%s", diff)
	}
	sum.Duration = 0
	// Toplevel 2's keeper b[2] was gone: the pass read toplevel 2's keepers
	// again (an older trace may have become one) and examined b[0] and b[1]
	// a second time, fresh and held now.
	wantSum := Summary{Canvases: 1, Examined: 15, Renewed: 10, AlreadyFresh: 4, Held: 2, Gone: 1, Patches: 11}
	if diff := cmp.Diff(wantSum, sum); diff != "" {
		t.Errorf("Summary (-want +got):\n%s", diff)
	}
	if got := counterValue(t, g.m.renewed); got != 10 {
		t.Errorf("tracegw_gc_renewed_total = %v, want 10", got)
	}
	if _, err := e.db.Get(ctx, c, b[2].ID); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("index rows of the gone trace: Get = %v, want ErrNotFound", err)
	}
	now := e.now().Truncate(time.Second)
	stored := e.bucketKeys(t)
	for _, k := range e.keys[a[11].ID] {
		if ct := stored[k]; ct.Before(now.Add(-time.Minute)) {
			t.Errorf("customTime of %s = %s, want about %s", k, ct, now)
		}
	}
	if r, err := e.db.Get(ctx, c, a[4].ID); err != nil || r.CustomTime.Before(now.Add(-time.Minute)) {
		t.Errorf("index custom_time of a renewed keeper = %v, %v; want about %s", r.CustomTime, err, now)
	}

	// Toplevel 2 got its verdict in the same pass: nothing is due now.
	sum, err = g.Pass(ctx, false)
	if err != nil || sum.Examined != 0 || sum.Canvases != 0 {
		t.Errorf("second pass: %+v, %v; want nothing due", sum, err)
	}
	if diff := cmp.Diff(want, objs.counts()); diff != "" {
		t.Errorf("PATCHes after two passes (-want +got):\n%s", diff)
	}
}

func TestPassDryRun(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 24*time.Hour)
	c := canvas(2)
	for range 3 {
		e.save(t, c, 0, 1)
	}
	e.advance(t, 6*Day)
	objs := newCounting(e.gcs)
	var progress [][2]int
	g := e.newGC(t, objs, DefaultPolicy(), Options{OnProgress: func(done, total int) { progress = append(progress, [2]int{done, total}) }})
	sum, err := g.Pass(t.Context(), true)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if sum.Renewed != 3 || sum.Patches != 0 || len(objs.counts()) != 0 || !sum.DryRun {
		t.Errorf("dry run: %+v, PATCHes %v; want 3 to renew and no PATCH", sum, objs.counts())
	}
	if diff := cmp.Diff([][2]int{{1, 1}}, progress); diff != "" {
		t.Errorf("progress (-want +got):\n%s", diff)
	}
	sum, err = g.Pass(t.Context(), false)
	if err != nil || sum.Renewed != 3 || sum.Patches != 3 {
		t.Errorf("pass after dry run: %+v, %v; want 3 renewed with 3 PATCHes (dry run wrote nothing)", sum, err)
	}
}

// TestConcurrentPassesRenewOnce runs two GCs (two replicas) on one index
// and bucket at once: every due object is PATCHed exactly once in total.
func TestConcurrentPassesRenewOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 24*time.Hour)
	want := map[string]int{}
	for i := range 24 {
		c := canvas(byte(10 + i))
		for range 4 {
			r := e.save(t, c, 0, traces.TLID(i%3+1), 99)
			want[traces.TraceKey(c, r.ID)] = 1
		}
	}
	e.advance(t, 6*Day)
	r1, r2 := newCounting(e.gcs), newCounting(e.gcs)
	g1 := e.newGC(t, r1, DefaultPolicy(), Options{Canvases: 3})
	g2 := e.newGC(t, r2, DefaultPolicy(), Options{Canvases: 3})
	var wg sync.WaitGroup
	var s1, s2 Summary
	var err1, err2 error
	wg.Go(func() { s1, err1 = g1.Pass(t.Context(), false) })
	wg.Go(func() { s2, err2 = g2.Pass(t.Context(), false) })
	wg.Wait()
	if err1 != nil || err2 != nil {
		t.Fatalf("passes: %v, %v", err1, err2)
	}
	got := r1.counts()
	for k, n := range r2.counts() {
		got[k] += n
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("PATCHes by both replicas (-want +got):\n%s", diff)
	}
	if n := s1.Renewed + s2.Renewed; n != len(want) {
		t.Errorf("renewed %d + %d, want %d in total (%+v, %+v)", s1.Renewed, s2.Renewed, len(want), s1, s2)
	}
	t.Logf("replica 1: %+v; replica 2: %+v", s1, s2)
}

// TestRenewFaults drives renewObject's error handling with an in-memory
// store: retries on unavailable, a precondition failure, a refused PATCH of
// an object that is already fresh, and a persistent failure.
func TestRenewFaults(t *testing.T) {
	t.Parallel()
	unavailable := fmt.Errorf("503: %w", traces.ErrUnavailable)
	for _, tc := range []struct {
		name    string
		fault   func(key string, call int) error
		bumpTo  time.Duration // customTime set behind GC's back before the pass (0: none)
		want    Summary
		patches int
	}{
		{"clean", nil, 0, Summary{Renewed: 1, Patches: 1}, 1},
		{"unavailable twice then ok", func(_ string, call int) error {
			if call <= 2 {
				return unavailable
			}
			return nil
		}, 0, Summary{Renewed: 1, Patches: 3}, 1},
		{"unavailable past attempts", func(string, int) error { return unavailable }, 0, Summary{Failed: 1, Patches: 4}, 0},
		{"precondition failed once", func(_ string, call int) error {
			if call == 1 {
				return fmt.Errorf("412: %w", traces.ErrPreconditionFailed)
			}
			return nil
		}, 0, Summary{Renewed: 1, Patches: 2}, 1},
		{"someone renewed it later than us: re-read says done", nil, time.Hour, Summary{AlreadyFresh: 1, Patches: 1}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, 24*time.Hour)
			c := canvas(3)
			r := e.save(t, c, 0, 1)
			e.advance(t, 6*Day)
			m := newMemStore()
			key := traces.TraceKey(c, r.ID)
			m.put(key, r.CustomTime)
			if tc.bumpTo != 0 {
				m.put(key, e.now().Add(tc.bumpTo))
			}
			m.fault = tc.fault
			g := e.newGC(t, m, DefaultPolicy(), Options{Attempts: 4})
			sum, err := g.Pass(t.Context(), false)
			if err != nil {
				t.Fatalf("Pass: %v", err)
			}
			sum.Duration, sum.Canvases, sum.Examined = 0, 0, 0
			if diff := cmp.Diff(tc.want, sum); diff != "" {
				t.Errorf("Summary (-want +got):\n%s", diff)
			}
			if m.patches != tc.patches {
				t.Errorf("successful PATCHes = %d, want %d", m.patches, tc.patches)
			}
			// A failed keeper leaves its toplevel due; a done one does not.
			again, err := g.Pass(t.Context(), true)
			if err != nil {
				t.Fatal(err)
			}
			if wantDue := tc.want.Failed; again.Examined != wantDue {
				t.Errorf("keepers still due after the pass = %d, want %d", again.Examined, wantDue)
			}
		})
	}
}

// TestPassRenewsLayers: a keeper's layers are renewed with it, a layer the
// bucket lacks does not fail the trace, and a trace already renewed by
// someone else is not PATCHed again.
func TestPassRenewsLayers(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 24*time.Hour)
	c := canvas(4)
	m := newMemStore()
	var rs []traces.Record
	for range 2 {
		rs = append(rs, e.save(t, c, 0, 1))
	}
	if _, err := e.raw.Exec(t.Context(), `UPDATE traces SET layers = 3 WHERE canvas_id = $1`, [16]byte(c)); err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		m.put(traces.TraceKey(c, r.ID), r.CustomTime)
		for n := 1; n <= 3; n++ {
			if r.ID == rs[1].ID && n == 2 {
				continue // layer 2 of the second trace is missing
			}
			m.put(traces.LayerKey(c, r.ID, n), r.CustomTime)
		}
	}
	e.advance(t, 6*Day)
	g := e.newGC(t, m, DefaultPolicy(), Options{})
	before := e.now().Truncate(time.Second) // the pass's clock reads it or later
	sum, err := g.Pass(t.Context(), false)
	if err != nil {
		t.Fatalf("Pass: %v", err)
	}
	after := e.now()
	if sum.Renewed != 2 || sum.Failed != 0 || sum.Patches != 8 || m.patches != 7 {
		t.Errorf("Pass: %+v with %d successful PATCHes; want 2 renewed, 8 PATCHes of which 7 succeed", sum, m.patches)
	}
	for k, o := range m.objs {
		if o.CustomTime.Before(before) || o.CustomTime.After(after) {
			t.Errorf("customTime of %s = %s, want the pass's time, between %s and %s", k, o.CustomTime, before, after)
		}
	}
}

func TestNewRefusesUnsafePolicy(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	p.Interval = 24 * time.Hour
	_, err := New(newMemStore(), nil, p, time.Now, nil, nil, Options{})
	if !errors.Is(err, traces.ErrInvalid) {
		t.Errorf("New with a 1d interval and a 2d margin = %v, want ErrInvalid", err)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}

// TestPassRenewsTheTraceAGoneKeeperPromotes: the newest of a toplevel's
// keep traces is gone but its rows remain (its deletion notification is
// late), so the trace just past keep is a keeper now, and it was never
// renewed: its retention is about to run out. The pass that finds the gone
// keeper must renew it, not leave it to the next pass, after which the
// lifecycle rule has deleted it (history seed 708).
func TestPassRenewsTheTraceAGoneKeeperPromotes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	ctx := t.Context()
	p := e.setupDefaultBucket(t)
	c := canvas(1)
	if _, err := e.db.SetCanvasKeep(ctx, c, 2, p.Keep, e.now()); err != nil {
		t.Fatal(err)
	}
	// Keepers mid and newest; old is rank 3. Six and a half days later
	// newest's object is gone, its rows not yet.
	old, mid, newest := e.save(t, c, 0, 1), e.save(t, c, 0, 1), e.save(t, c, 0, 1)
	e.advance(t, 6*Day+12*time.Hour)
	if err := e.gcs.Delete(ctx, traces.TraceKey(c, newest.ID), 0); err != nil {
		t.Fatal(err)
	}
	g := e.newGC(t, e.gcs, p, Options{})
	if _, err := g.Pass(ctx, false); err != nil {
		t.Fatalf("Pass: %v", err)
	}
	stored := e.bucketKeys(t)
	if ct, ok := stored[traces.TraceKey(c, old.ID)]; !ok || ct.Before(e.now().Add(-time.Minute)) {
		t.Errorf("the promoted keeper's customTime = %s (present %v), want about %s: renewed by the pass that found the gone keeper", ct, ok, e.now())
	}
	e.advance(t, 12*time.Hour) // the lifecycle rule runs: the old trace is past its first retention
	stored = e.bucketKeys(t)
	for _, r := range []traces.Record{old, mid} {
		if _, ok := stored[traces.TraceKey(c, r.ID)]; !ok {
			t.Errorf("keeper %s was deleted", r.ID)
		}
	}
}
