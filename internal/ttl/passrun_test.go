package ttl

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// TestPassOutcomes: a pass with a failed keeper is a failed pass (counted,
// recorded, the keeper deadline left where the last successful pass put
// it) although Pass returns no error for it; the next clean pass is
// successful and moves the deadline to its start + margin.
func TestPassOutcomes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 24*time.Hour)
	ctx := t.Context()
	c := canvas(21)
	r := e.save(t, c, 0, 1)
	e.advance(t, 6*Day)
	m := newMemStore()
	key := traces.TraceKey(c, r.ID)
	m.put(key, r.CustomTime)
	m.fault = func(string, int) error { return fmt.Errorf("503: %w", traces.ErrUnavailable) }
	reg := prometheus.NewRegistry()
	g, err := New(m, e.db, DefaultPolicy(), e.now, nil, reg, Options{Attempts: 1, Replica: "r1"})
	if err != nil {
		t.Fatal(err)
	}

	sum, err := g.Pass(ctx, false)
	if err != nil || sum.Failed != 1 {
		t.Fatalf("Pass = %+v, %v; want one failed keeper, no error", sum, err)
	}
	last := g.LastPass()
	if last.Outcome != index.PassFailed || !last.KeeperDeadline.IsZero() || last.Replica != "r1" || last.Failed != 1 {
		t.Errorf("record of a pass with a failed keeper = %+v", last)
	}
	if got := counterValue(t, g.m.passes.WithLabelValues(index.PassFailed)); got != 1 {
		t.Errorf("failed passes = %v, want 1", got)
	}
	if got := gaugeValue(g.m.consecutiveFailed); got != 1 {
		t.Errorf("consecutive failed passes = %v, want 1", got)
	}
	if got := gaugeValue(g.m.lastSuccess); got != 0 {
		t.Errorf("last success after a failed pass = %v, want unset", got)
	}

	m.fault = nil
	e.advance(t, time.Hour)
	if _, err := g.Pass(ctx, false); err != nil {
		t.Fatal(err)
	}
	ok := g.LastPass()
	if ok.Outcome != index.PassOK || !ok.KeeperDeadline.Equal(ok.StartedAt.Add(2*Day)) {
		t.Errorf("record of a clean pass = %+v; want ok with deadline start + 2d", ok)
	}
	if got := gaugeValue(g.m.consecutiveFailed); got != 0 {
		t.Errorf("consecutive failed passes after a success = %v, want 0", got)
	}
	if got, want := gaugeValue(g.m.keeperDeadline), unixSeconds(ok.KeeperDeadline); got != want {
		t.Errorf("keeper deadline gauge = %v, want %v", got, want)
	}
	hLast, _, hOK, found, err := e.db.PassHistory(ctx)
	if err != nil || !found || !hOK.KeeperDeadline.Equal(ok.KeeperDeadline) || hLast.Outcome != index.PassOK {
		t.Errorf("pass history: last %+v, ok %+v (%v), %v", hLast, hOK, found, err)
	}

	// A restarted replica starts its gauges from the history.
	g2, err := New(m, e.db, DefaultPolicy(), e.now, nil, prometheus.NewRegistry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	g2.loadHealth(ctx)
	if got, want := gaugeValue(g2.m.keeperDeadline), unixSeconds(ok.KeeperDeadline); got != want {
		t.Errorf("restarted replica's keeper deadline = %v, want %v", got, want)
	}

	// A dry run records nothing.
	if _, err := g.Pass(ctx, true); err != nil {
		t.Fatal(err)
	}
	if l, _, _, _, _ := e.db.PassHistory(ctx); !l.StartedAt.Equal(ok.StartedAt) {
		t.Errorf("a dry run was recorded: %+v", l)
	}
}

// stuckRenewer never answers: each PATCH waits until its context ends.
type stuckRenewer struct{ renewer }

func (stuckRenewer) SetCustomTime(ctx context.Context, _ string, _ time.Time, _ int64) (traces.ObjectInfo, error) {
	<-ctx.Done()
	return traces.ObjectInfo{}, ctx.Err()
}

// TestPassCutShortAtDeadline: a pass that runs into its deadline of one GC
// interval is cut short: a failed pass, counted as an overrun.
func TestPassCutShortAtDeadline(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 24*time.Hour)
	r := e.save(t, canvas(22), 0, 1)
	e.advance(t, 6*Day)
	m := newMemStore()
	m.put(traces.TraceKey(r.Canvas, r.ID), r.CustomTime)
	p := DefaultPolicy()
	p.Interval = 100 * time.Millisecond
	g, err := New(stuckRenewer{m}, e.db, p, e.now, nil, prometheus.NewRegistry(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.Pass(t.Context(), false)
	if err == nil || !strings.Contains(err.Error(), "cut short at its deadline of one GC interval (100ms)") {
		t.Errorf("Pass = %v, want it cut short", err)
	}
	if got := g.LastPass().Outcome; got != index.PassCutShort {
		t.Errorf("outcome = %s, want cut_short", got)
	}
	if got := counterValue(t, g.m.overruns); got != 1 {
		t.Errorf("overruns = %v, want 1", got)
	}
	if got := counterValue(t, g.m.passes.WithLabelValues(index.PassCutShort)); got != 1 {
		t.Errorf("cut_short passes = %v, want 1", got)
	}
}

// TestKeeperDeadlineWithSkips: a pass that skipped a canvas another replica
// held is successful, but its keeper deadline is one interval earlier.
func TestKeeperDeadlineWithSkips(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 24*time.Hour)
	ctx := t.Context()
	a, b := canvas(23), canvas(24)
	e.save(t, a, 0, 1)
	e.save(t, b, 0, 1)
	e.advance(t, 6*Day)
	claim, ok, err := e.db.ClaimCanvas(ctx, b)
	if err != nil || !ok {
		t.Fatalf("claim: %v %v", ok, err)
	}
	defer claim.Release()
	g := e.newGC(t, e.gcs, DefaultPolicy(), Options{})
	sum, err := g.Pass(ctx, false)
	if err != nil || sum.Skipped != 1 || sum.Renewed != 1 {
		t.Fatalf("Pass = %+v, %v; want one canvas renewed, one skipped", sum, err)
	}
	last := g.LastPass()
	if want := last.StartedAt.Add(2*Day - time.Hour); last.Outcome != index.PassOK || !last.KeeperDeadline.Equal(want) {
		t.Errorf("pass with a skip: %s, deadline %s; want ok, %s", last.Outcome, last.KeeperDeadline, want)
	}
}

// A pass that did nothing logs its summary at debug level (one runs every
// hour of the emulator's clock); one that renewed, removed or repaired
// anything, or did not end ok, logs at info; an overrun warns.
func TestPassLogLevel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		sum     Summary
		outcome string
		overrun bool
		want    slog.Level
	}{
		{"nothing due", Summary{}, index.PassOK, false, slog.LevelDebug},
		{"keepers already fresh", Summary{Canvases: 2, Examined: 20, AlreadyFresh: 20, Held: 1}, index.PassOK, false, slog.LevelDebug},
		{"canvases claimed elsewhere", Summary{Skipped: 3}, index.PassOK, false, slog.LevelDebug},
		{"renewed", Summary{Examined: 1, Renewed: 1, Patches: 1}, index.PassOK, false, slog.LevelInfo},
		{"would renew (dry run)", Summary{Examined: 1, Renewed: 1, DryRun: true}, index.PassOK, false, slog.LevelInfo},
		{"keeper gone", Summary{Examined: 1, Gone: 1}, index.PassOK, false, slog.LevelInfo},
		{"repaired", Summary{Repaired: 1}, index.PassOK, false, slog.LevelInfo},
		{"failed", Summary{Examined: 1, Failed: 1}, index.PassFailed, false, slog.LevelInfo},
		{"failed with nothing counted", Summary{}, index.PassFailed, false, slog.LevelInfo},
		{"refused", Summary{}, index.PassRefused, false, slog.LevelInfo},
		{"cut short", Summary{}, index.PassCutShort, false, slog.LevelInfo},
		{"overrun doing nothing", Summary{}, index.PassOK, true, slog.LevelWarn},
		{"overrun renewing", Summary{Renewed: 5}, index.PassOK, true, slog.LevelWarn},
	} {
		if got := passLogLevel(tc.sum, tc.outcome, tc.overrun); got != tc.want {
			t.Errorf("%s: level %s, want %s", tc.name, got, tc.want)
		}
	}
}
