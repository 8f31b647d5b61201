package ttl

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/traces"
)

// TestRetentionOnEmulator is issue 4's end-to-end check on the emulator's
// lifecycle rule and clock, with GC as the clock's step hook: toplevel A gets
// 15 traces over 3 days, B 3, function F is touched by 12 of A's (the oldest
// 12); toplevel C's 2 traces lose their toplevel; one of A's oldest traces is
// held. After 30 days exactly A's newest 10, B's 3, F's newest 10 and the
// held trace remain; another 30 days change nothing. (Index rows of deleted
// objects are removed here by hand; notifications do that in production.)
func TestRetentionOnEmulator(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	ctx := t.Context()
	p := e.setupDefaultBucket(t)
	g := e.newGC(t, e.gcs, p, Options{})
	e.emu.E.SetHooks(emulator.Hooks{OnStep: g.Step})
	const (
		tlA, tlB, tlC traces.TLID = 1, 2, 3
		tlF           traces.TLID = 100
	)
	c := canvas(7)
	var all, a, b, cs []traces.Record
	for i := range 15 {
		var extra []traces.TLID
		if i < 12 {
			extra = []traces.TLID{tlF}
		}
		a = append(a, e.save(t, c, 0, tlA, extra...))
		if i == 7 {
			for range 3 {
				b = append(b, e.save(t, c, 0, tlB))
			}
			for range 2 {
				cs = append(cs, e.save(t, c, 0, tlC))
			}
		}
		e.advance(t, 3*Day/15)
	}
	all = slices.Concat(a, b, cs)
	e.hold(t, a[0])
	if err := e.db.ForgetToplevel(ctx, c, tlC, e.now()); err != nil {
		t.Fatal(err)
	}

	want := map[string]bool{traces.TraceKey(c, a[0].ID): true} // held
	for _, r := range slices.Concat(a[5:], a[2:12], b) {       // A's newest 10, F's newest 10, B's
		want[traces.TraceKey(c, r.ID)] = true
	}
	for round := 1; round <= 2; round++ {
		s := e.advance(t, 30*Day)
		got := map[string]bool{}
		for k := range e.bucketKeys(t) {
			got[k] = true
		}
		if diff := cmp.Diff(sortedKeys(want), sortedKeys(got)); diff != "" {
			t.Fatalf("round %d: objects left (-want +got):\n%s", round, diff)
		}
		if round == 2 && s.Deleted != 0 {
			t.Errorf("round 2 deleted %d objects, want 0", s.Deleted)
		}
		// 16 unheld keepers renewed about every 5 days, not on every step.
		if s.Renewed > 16*7 {
			t.Errorf("round %d renewed %d times, want at most %d", round, s.Renewed, 16*7)
		}
		t.Logf("round %d: %+v", round, s)
		for _, r := range all {
			if !got[traces.TraceKey(c, r.ID)] {
				if _, err := e.db.Remove(ctx, c, r.ID, r.Generation); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	sum, err := g.Pass(ctx, false)
	if err != nil || sum.Patches != 0 {
		t.Errorf("pass after the rounds: %+v, %v; want nothing to do", sum, err)
	}
}
