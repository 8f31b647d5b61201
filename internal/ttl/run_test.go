package ttl

import (
	"context"
	"testing"
	"time"
)

// TestRunPacesOnItsClock: Run runs a pass at once, then waits (through
// Options.Wait) until its own clock reads one interval after that pass
// began, and runs the next pass only then, at the clock's new time; it
// returns nil when its context ends during a wait.
func TestRunPacesOnItsClock(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	p := DefaultPolicy()
	type waitCall struct {
		until   time.Time
		proceed chan error
	}
	waits := make(chan waitCall)
	g, err := New(e.gcs, e.db, p, e.now, nil, nil, Options{
		Wait: func(ctx context.Context, until time.Time) error {
			c := waitCall{until, make(chan error)}
			select {
			case waits <- c:
			case <-ctx.Done():
				return ctx.Err()
			}
			select {
			case err := <-c.proceed:
				return err
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	start := e.now()
	go func() { done <- g.Run(ctx) }()

	passes := func() int {
		t.Helper()
		var n int
		if err := e.raw.QueryRow(t.Context(), `SELECT count(*) FROM gc_passes`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	w := <-waits // the first pass has run
	if n := passes(); n != 1 {
		t.Fatalf("passes before the first wait = %d, want 1", n)
	}
	if lo, hi := start.Add(p.Interval), e.now().Add(p.Interval); w.until.Before(lo) || w.until.After(hi) {
		t.Errorf("first wait until %s, want one interval after the first pass began (%s..%s)", w.until, lo, hi)
	}
	e.advance(t, p.Interval) // the clock reaches until; the test lets Run go on
	w.proceed <- nil
	w2 := <-waits
	if n := passes(); n != 2 {
		t.Fatalf("passes before the second wait = %d, want 2", n)
	}
	if !w2.until.After(w.until) || w2.until.Sub(w.until) < p.Interval {
		t.Errorf("second wait until %s, want at least one interval after %s", w2.until, w.until)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil when its context ends", err)
	}
	if n := passes(); n != 2 {
		t.Errorf("passes after cancel = %d, want 2", n)
	}
}
