package ttl

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/holds"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// TestCanvasKeepOnEmulator: a canvas with a keep-N of 25 keeps the newest 25
// traces of its toplevel through 30 days of lifecycle sweeps, its
// neighbour with the default keeps 10; after the canvas's keep is lowered
// to 5, the ranks past 5 expire by the rule.
func TestCanvasKeepOnEmulator(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	ctx := t.Context()
	p := e.setupDefaultBucket(t)
	g := e.newGC(t, e.gcs, p, Options{})
	e.emu.E.SetHooks(emulator.Hooks{OnStep: g.Step})
	own, dflt := canvas(1), canvas(2)
	if _, err := e.db.SetCanvasKeep(ctx, own, 25, p.Keep, e.now()); err != nil {
		t.Fatal(err)
	}
	var a, b []traces.Record
	for range 30 {
		a = append(a, e.save(t, own, 0, 1))
		b = append(b, e.save(t, dflt, 0, 1))
		e.advance(t, time.Hour)
	}
	survivors := func(rs []traces.Record) int {
		keys := e.bucketKeys(t)
		n := 0
		for _, r := range rs {
			if _, ok := keys[traces.TraceKey(r.Canvas, r.ID)]; ok {
				n++
			}
		}
		for i, r := range rs[len(rs)-n:] { // the survivors are the newest
			if _, ok := keys[traces.TraceKey(r.Canvas, r.ID)]; !ok {
				t.Errorf("trace %d of %d is gone while an older one survived", len(rs)-n+i, len(rs))
			}
		}
		return n
	}
	e.advance(t, 30*Day)
	if diff := cmp.Diff([2]int{25, 10}, [2]int{survivors(a), survivors(b)}); diff != "" {
		t.Errorf("survivors after 30 days, own keep 25 and default (-want +got):\n%s", diff)
	}
	if _, err := e.db.SetCanvasKeep(ctx, own, 5, p.Keep, e.now()); err != nil {
		t.Fatal(err)
	}
	e.advance(t, 8*Day)
	if got := survivors(a); got != 5 {
		t.Errorf("survivors 8 days after lowering the keep to 5: %d, want 5", got)
	}
}

// TestPassEndsHolds: a pass releases the holds whose end has come (through
// the holds service, as a release does) and no other; the released trace
// gets a fresh retention period from then and is deleted after it, while a
// hold without an end and one that ends later stay.
func TestPassEndsHolds(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	ctx := t.Context()
	p := e.setupDefaultBucket(t)
	hs := holds.New(e.gcs, e.db, holds.Options{Now: e.now})
	g := e.newGC(t, e.gcs, p, Options{Holds: hs})
	e.emu.E.SetHooks(emulator.Hooks{OnStep: g.Step})
	c := canvas(3)
	ended, later, endless := e.save(t, c, 1, 1), e.save(t, c, 0, 1), e.save(t, c, 0, 1)
	for range 10 { // none of the three is a keeper
		e.save(t, c, 0, 1)
	}
	for _, h := range []struct {
		r  traces.Record
		sp holds.Spec
	}{{ended, holds.Spec{For: 3 * Day}}, {later, holds.Spec{For: 20 * Day}}, {endless, holds.Spec{}}} {
		if _, err := hs.HoldWith(ctx, c, h.r.ID, h.sp); err != nil {
			t.Fatal(err)
		}
	}
	heldKeys := func() []string {
		var out []string
		for k := range e.bucketKeys(t) {
			if info, err := e.gcs.Stat(ctx, k); err == nil && info.TemporaryHold {
				out = append(out, k)
			}
		}
		return out
	}
	all := e.keys[ended.ID]
	s, err := g.Pass(ctx, false)
	if err != nil || s.HoldsEnded != 0 {
		t.Fatalf("pass before any end = %+v, %v; want no hold ended", s, err)
	}
	e.advance(t, 3*Day+time.Hour)
	if got := len(heldKeys()); got != 2 {
		t.Errorf("held objects 3 days on: %d, want 2 (the other two holds)", got)
	}
	for _, k := range all {
		info, err := e.gcs.Stat(ctx, k)
		if err != nil || info.TemporaryHold || e.now().Sub(info.CustomTime) > 2*time.Hour {
			t.Errorf("%s after its hold ended: %+v, %v; want released with a fresh customTime", k, info, err)
		}
	}
	list, err := hs.List(ctx, c)
	if err != nil || len(list) != 2 {
		t.Errorf("holds after the end: %+v, %v", list, err)
	}
	e.advance(t, 6*Day)
	if _, ok := e.bucketKeys(t)[traces.TraceKey(c, ended.ID)]; !ok {
		t.Errorf("the released trace is gone 6 days after its release, want it kept the 7 days of retention")
	}
	e.advance(t, 2*Day)
	if _, ok := e.bucketKeys(t)[traces.TraceKey(c, ended.ID)]; ok {
		t.Errorf("the released trace outlived its fresh retention period")
	}
	if got := len(heldKeys()); got != 2 {
		t.Errorf("held objects 11 days on: %d, want 2", got)
	}
	e.advance(t, 10*Day)
	if got := len(heldKeys()); got != 1 {
		t.Errorf("held objects 21 days on: %d, want 1 (the endless hold)", got)
	}
}

// TestRenewToplevelsAfterAKeepRaise: raising a canvas's keep marks its
// toplevels due, and RenewToplevels(c, nil) renews the newly kept ranks at
// once, however old they are, and records them; nothing is due after it.
func TestRenewToplevelsAfterAKeepRaise(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	ctx := t.Context()
	p := DefaultPolicy()
	g := e.newGC(t, e.gcs, p, Options{})
	c := canvas(4)
	var rs []traces.Record
	for range 25 {
		rs = append(rs, e.save(t, c, 0, 9))
	}
	e.advance(t, p.Retention-p.Margin+Day) // every trace is past retention - margin
	if _, err := g.Pass(ctx, false); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.SetCanvasKeep(ctx, c, 25, p.Keep, e.now()); err != nil {
		t.Fatal(err)
	}
	if err := g.RenewToplevels(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	for i, r := range rs {
		info, err := e.gcs.Stat(ctx, traces.TraceKey(c, r.ID))
		if err != nil || e.now().Sub(info.CustomTime) > time.Minute {
			t.Errorf("rank %d after the raise: customTime %v, %v; want renewed", len(rs)-i, info.CustomTime, err)
		}
	}
	ks, err := e.db.Keepers(ctx, c, e.now().Add(-time.Hour), p.Keep, nil)
	if err != nil || len(ks.Toplevels) != 0 {
		t.Errorf("due toplevels after the renewal: %+v, %v; want none", ks.Toplevels, err)
	}
}

// TestCurrentPolicy: listings get the policy a pass resolves (the bucket's
// rule and the record), re-read once PolicyCacheTTL has passed, and the
// strictest values named when the configuration disagrees.
func TestCurrentPolicy(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	ctx := t.Context()
	p := e.setupDefaultBucket(t)
	if ret, keep := e.newGC(t, e.gcs, p, Options{}).CurrentPolicy(ctx); ret != 7*Day || keep != 10 {
		t.Errorf("unmanaged CurrentPolicy = %s, %d; want the configuration", ret, keep)
	}
	g := e.newGC(t, e.gcs, p, Options{Bucket: e.gcs})
	if ret, keep := g.CurrentPolicy(ctx); ret != 7*Day || keep != 10 {
		t.Errorf("fresh install: CurrentPolicy = %s, %d; want 7d, 10", ret, keep)
	}
	// retention set --retention 5d --keep-per-toplevel 20, rule not yet changed.
	rec := index.PolicyRecord{RetentionDays: 5, PrevRetentionDays: 7, Keep: 20, PrevKeep: 10, KeepChangedAt: e.now(), UpdatedAt: e.now()}
	if err := e.db.SavePolicy(ctx, rec, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if ret, keep := g.CurrentPolicy(ctx); ret != 7*Day || keep != 10 {
		t.Errorf("within the cache's life: CurrentPolicy = %s, %d; want the cached 7d, 10", ret, keep)
	}
	e.advance(t, PolicyCacheTTL)
	if ret, keep := g.CurrentPolicy(ctx); ret != 5*Day || keep != 20 {
		t.Errorf("after the change: CurrentPolicy = %s, %d; want 5d, 20", ret, keep)
	}
	// A configuration the record does not accept: GC refuses, listings
	// describe the strictest retention and the recorded keep.
	bad := p
	bad.Retention = 3 * Day
	bad.Margin = 2 * Day
	g2 := e.newGC(t, e.gcs, bad, Options{Bucket: e.gcs})
	if _, err := g2.Check(ctx); err == nil {
		t.Fatal("Check accepted a disagreeing configuration")
	}
	if ret, keep := g2.CurrentPolicy(ctx); ret != 3*Day || keep != 20 {
		t.Errorf("disagreeing: CurrentPolicy = %s, %d; want 3d, 20", ret, keep)
	}
}
