package ttl

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// during is a renewer that runs f (once) when the pass issues its first
// PATCH: after the pass has read the keepers, before it writes renew_after.
type during struct {
	*counting
	once sync.Once
	f    func()
}

func (d *during) SetCustomTime(ctx context.Context, key string, t time.Time, ifMeta int64) (traces.ObjectInfo, error) {
	d.once.Do(d.f)
	return d.counting.SetCustomTime(ctx, key, t, ifMeta)
}

// due reports whether toplevel tlid of c is due at the GC's next pass.
func (e *env) due(t *testing.T, g *GC, c traces.CanvasID, tlid traces.TLID) bool {
	t.Helper()
	p := g.policy()
	ks, err := e.db.Keepers(t.Context(), c, p.RenewBefore(e.now().Add(p.Interval)), p.Keep, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range ks.Toplevels {
		if tl.TLID == tlid {
			return true
		}
	}
	return false
}

// Sequence 1 of the keeper-safety review: a GC pass reads a toplevel's
// keepers; meanwhile a write lowers the toplevel's renew_after because its
// keepers changed; the pass then wrote renew_after unconditionally, so the
// new keeper was never renewed and the lifecycle rule took it. Now the
// pass writes only if the toplevel's rev is unchanged, and the next pass
// renews the new keeper.
func TestGCNeverOverwritesAConcurrentLoweringOfRenewAfter(t *testing.T) {
	t.Parallel()
	t.Run("a replace drops the toplevel", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, 24*time.Hour)
		c := canvas(1)
		var a []traces.Record
		for range 11 {
			a = append(a, e.save(t, c, 0, 1))
		}
		e.advance(t, 6*Day)
		newest := a[10]
		objs := &during{counting: newCounting(e.gcs), f: func() {
			r := newest
			r.RootTLID, r.TLIDs, r.Generation, r.CustomTime = 9, []traces.TLID{9}, newest.Generation+1, e.now().Truncate(time.Second)
			if _, err := e.db.ReplaceTrace(t.Context(), r, e.now(), index.Token{}); err != nil {
				t.Error(err)
			}
		}}
		g := e.newGC(t, objs, DefaultPolicy(), Options{})
		if _, err := g.Pass(t.Context(), false); err != nil {
			t.Fatal(err)
		}
		if !e.due(t, g, c, 1) {
			t.Fatal("toplevel 1 lost a keeper during the pass but is not due")
		}
		// a[0] is now among the latest 10 of toplevel 1, six days old.
		if _, err := g.Pass(t.Context(), false); err != nil {
			t.Fatal(err)
		}
		if n := objs.counts()[traces.TraceKey(c, a[0].ID)]; n != 1 {
			t.Errorf("the new keeper was renewed %d times, want 1", n)
		}
	})
	t.Run("a layer links an old trace", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t, 24*time.Hour)
		ctx := t.Context()
		c := canvas(2)
		old := e.save(t, c, 0, 3) // its toplevel is deleted: not a keeper of anything
		if err := e.db.ForgetToplevel(ctx, c, 3, e.now()); err != nil {
			t.Fatal(err)
		}
		y := e.save(t, c, 0, 5)
		e.advance(t, 6*Day)
		objs := &during{counting: newCounting(e.gcs), f: func() {
			rec, tok, err := e.db.ReserveLayer(ctx, c, old.ID, 100)
			if err != nil {
				t.Error(err)
				return
			}
			if _, _, err := e.db.CommitLayer(ctx, c, old.ID, rec.Generation, []traces.TLID{5}, tok, false, e.now()); err != nil {
				t.Error(err)
			}
		}}
		g := e.newGC(t, objs, DefaultPolicy(), Options{})
		if _, err := g.Pass(ctx, false); err != nil {
			t.Fatal(err)
		}
		if got := objs.counts(); got[traces.TraceKey(c, y.ID)] != 1 || got[traces.TraceKey(c, old.ID)] != 0 {
			t.Fatalf("first pass PATCHed %v; want y only (the link came after the read)", got)
		}
		if !e.due(t, g, c, 5) {
			t.Fatal("toplevel 5 gained an old keeper during the pass but is not due")
		}
		if _, err := g.Pass(ctx, false); err != nil {
			t.Fatal(err)
		}
		if n := objs.counts()[traces.TraceKey(c, old.ID)]; n != 1 {
			t.Errorf("the newly linked keeper was renewed %d times, want 1", n)
		}
	})
}

// Sequence 3 of the keeper-safety review, GC side: the index says held, the
// object is not (a release whose last write failed). GC used to skip "held"
// keepers, so the lifecycle rule took it. Keepers are renewed whatever the
// index says.
func TestKeeperRenewedWhateverTheIndexSaysOfItsHold(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 24*time.Hour)
	c := canvas(1)
	r := e.save(t, c, 0, 1)
	if _, err := e.raw.Exec(t.Context(), `UPDATE traces SET held_at = $3 WHERE canvas_id = $1 AND trace_id = $2`,
		[16]byte(c), [16]byte(r.ID), e.now()); err != nil {
		t.Fatal(err)
	}
	e.advance(t, 6*Day)
	objs := newCounting(e.gcs)
	g := e.newGC(t, objs, DefaultPolicy(), Options{})
	sum, err := g.Pass(t.Context(), false)
	if err != nil {
		t.Fatal(err)
	}
	if objs.counts()[traces.TraceKey(c, r.ID)] != 1 || sum.Held != 1 || sum.Renewed != 1 {
		t.Errorf("pass %+v, PATCHes %v; want the held keeper renewed", sum, objs.counts())
	}
}

// toplevelRows counts the toplevels rows of a canvas.
func (e *env) toplevelRows(t *testing.T, c traces.CanvasID) int {
	t.Helper()
	var n int
	if err := e.raw.QueryRow(t.Context(), `SELECT count(*) FROM toplevels WHERE canvas_id = $1`, [16]byte(c)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// Sequence 11 of the keeper-safety review: toplevels rows were never
// deleted, and an empty live toplevel was read again every few days for
// ever. A toplevel found empty on two passes goes (unless a trace arrived in
// between). A forgotten one stays, a tombstone: the history checker found
// that once its row was gone, a layer naming it on an older trace (a keeper
// of another toplevel) brought it back to life, and that trace was kept
// for ever as its only keeper.
func TestEmptyToplevelsGoForgottenOnesStay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 24*time.Hour)
	ctx := t.Context()
	c := canvas(1)
	old := e.save(t, c, 0, 4) // a keeper of toplevel 4 throughout
	empty, refilled, forgotten := e.save(t, c, 0, 1), e.save(t, c, 0, 2), e.save(t, c, 0, 3)
	for _, r := range []traces.Record{empty, refilled, forgotten} {
		if _, err := e.db.Remove(ctx, c, r.ID, r.Generation); err != nil { // their objects expired
			t.Fatal(err)
		}
	}
	if err := e.db.ForgetToplevel(ctx, c, 3, e.now()); err != nil {
		t.Fatal(err)
	}
	e.advance(t, 6*Day)
	g := e.newGC(t, newCounting(e.gcs), DefaultPolicy(), Options{EmptyGrace: time.Nanosecond})
	if _, err := g.Pass(ctx, false); err != nil {
		t.Fatal(err)
	}
	if n := e.toplevelRows(t, c); n != 4 {
		t.Fatalf("after the first pass %d toplevels rows, want 4 (empty ones are only marked)", n)
	}
	// A fresh trace of toplevel 2 arrives between the passes.
	fresh := e.save(t, c, 0, 2)
	e.advance(t, 2*Day) // toplevel 3's deletion is now older than the retention
	if _, err := g.Pass(ctx, false); err != nil {
		t.Fatal(err)
	}
	var tlids []int64
	rows, err := e.raw.Query(ctx, `SELECT tlid FROM toplevels WHERE canvas_id = $1 ORDER BY tlid`, [16]byte(c))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var tl int64
		if err := rows.Scan(&tl); err != nil {
			t.Fatal(err)
		}
		tlids = append(tlids, tl)
	}
	if !slices.Equal(tlids, []int64{2, 3, 4}) {
		t.Errorf("toplevels left = %v, want [2 3 4] (the refilled one, the forgotten one's tombstone, the old trace's)", tlids)
	}
	// A layer naming toplevel 3 arrives on the old trace, whose timestamp is
	// before the deletion: toplevel 3 stays dead.
	rec, tok, err := e.db.ReserveLayer(ctx, c, old.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := e.db.CommitLayer(ctx, c, old.ID, rec.Generation, []traces.TLID{3}, tok, false, e.now()); err != nil {
		t.Fatal(err)
	}
	var dead bool
	if err := e.raw.QueryRow(ctx, `SELECT deleted_at IS NOT NULL FROM toplevels WHERE canvas_id = $1 AND tlid = 3`, [16]byte(c)).Scan(&dead); err != nil || !dead {
		t.Errorf("toplevel 3 after a layer of an older trace named it: deleted %v (%v), want still deleted", dead, err)
	}
	ks, err := e.db.Keepers(ctx, c, e.now().Add(10*Day), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range ks.Toplevels {
		switch {
		case tl.TLID == 2 && !slices.Equal(tl.Keepers, []traces.TraceID{fresh.ID}):
			t.Errorf("keepers of the refilled toplevel = %v, want the fresh trace %s", tl.Keepers, fresh.ID)
		case tl.TLID == 3:
			t.Errorf("the forgotten toplevel has keepers %v", tl.Keepers)
		}
	}
}

// A write that makes an old, never renewed trace a keeper (here: a revived
// toplevel) hands the toplevel to RenewToplevels, which renews it at once
// instead of up to a GC interval later.
func TestRenewToplevelsRenewsAPromotedKeeperAtOnce(t *testing.T) {
	t.Parallel()
	e := newEnv(t, 24*time.Hour)
	ctx := t.Context()
	c := canvas(1)
	old := e.save(t, c, 0, 4)
	if err := e.db.ForgetToplevel(ctx, c, 4, e.now()); err != nil {
		t.Fatal(err)
	}
	e.advance(t, 6*Day)
	objs := newCounting(e.gcs)
	g := e.newGC(t, objs, DefaultPolicy(), Options{})
	// A trace that ran after the deletion revives toplevel 4: old is one of
	// its latest traces again, six days old.
	now := e.now().Truncate(time.Second)
	revival := traces.Record{Canvas: c, ID: traces.NewTraceID(now), RootTLID: 4, TLIDs: []traces.TLID{4},
		Timestamp: now, Generation: 1, CustomTime: now}
	put, err := e.db.PutTrace(ctx, revival, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(put.Due) != 1 || put.Due[0] != 4 {
		t.Fatalf("PutTrace.Due = %v, want [4]: the revived toplevel", put.Due)
	}
	if err := g.RenewToplevels(ctx, c, put.Due); err != nil {
		t.Fatal(err)
	}
	if n := objs.counts()[traces.TraceKey(c, old.ID)]; n != 1 {
		t.Errorf("the revived toplevel's old keeper was renewed %d times, want 1", n)
	}
}
