package index

import (
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/internal/traces"
)

// heldInListings reports the held flag of trace id in the Recent list of
// every tlid given.
func heldInListings(t *testing.T, db *DB, c traces.CanvasID, id traces.TraceID, tlids ...traces.TLID) []bool {
	t.Helper()
	var out []bool
	for _, tl := range tlids {
		list, err := db.Recent(t.Context(), c, tl, 100)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, s := range list {
			if s.ID == id {
				out, found = append(out, s.Held), true
			}
		}
		if !found {
			t.Fatalf("trace %s missing from the list of tlid %d", id, tl)
		}
	}
	return out
}

// hold records a hold as the holds service does (BeginHold, then EndOp
// once the objects are held).
func hold(t *testing.T, db *DB, c traces.CanvasID, id traces.TraceID, reason string, at time.Time) Hold {
	t.Helper()
	h, err := db.BeginHold(t.Context(), c, id, HoldSpec{Reason: reason}, at, 100)
	if err != nil {
		t.Fatalf("BeginHold: %v", err)
	}
	if held, err := db.EndOp(t.Context(), c, id, h.Token, true); err != nil || !held {
		t.Fatalf("EndOp = %v, %v; want held", held, err)
	}
	return h.Hold
}

// pending returns the number of operation tokens on a trace.
func pending(t *testing.T, db *DB, c traces.CanvasID, id traces.TraceID) int {
	t.Helper()
	return int(count(t, db, `SELECT cardinality(pending) FROM traces WHERE canvas_id = $1 AND trace_id = $2`, [16]byte(c), [16]byte(id)))
}

// TestHoldRelease: a hold marks the traces row and every trace_tlids row of
// the trace (not its neighbours'); repeating it keeps heldAt, keeps the
// reason when none is given and replaces it when one is; a release unmarks
// all of them and moves custom_time forward only when it ends; each leaves
// no token behind once it ends.
func TestHoldRelease(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	c := canvasID(1)
	r := record(c, 0, 10, 20, 30)
	other := record(c, 1, 10, 20)
	put(t, db, r, other)

	at := base.Add(time.Hour)
	if h := hold(t, db, c, r.ID, "bug 42", at); !cmp.Equal(h, Hold{ID: r.ID, Reason: "bug 42", HeldAt: at}) {
		t.Errorf("hold = %+v", h)
	}
	if got := heldInListings(t, db, c, r.ID, 10, 20, 30); !cmp.Equal(got, []bool{true, true, true}) {
		t.Errorf("held in listings = %v, want all true", got)
	}
	if got := heldInListings(t, db, c, other.ID, 10, 20); !cmp.Equal(got, []bool{false, false}) {
		t.Errorf("neighbour held in listings = %v, want all false", got)
	}
	if rec, err := db.Get(ctx, c, r.ID); err != nil || !rec.Held {
		t.Errorf("Get: held %v, err %v; want held", rec.Held, err)
	}
	if h := hold(t, db, c, r.ID, "", at.Add(time.Hour)); !cmp.Equal(h, Hold{ID: r.ID, Reason: "bug 42", HeldAt: at}) {
		t.Errorf("repeated hold without reason = %+v", h)
	}
	if h := hold(t, db, c, r.ID, "bug 43", at.Add(2*time.Hour)); !cmp.Equal(h, Hold{ID: r.ID, Reason: "bug 43", HeldAt: at}) {
		t.Errorf("repeated hold with a new reason = %+v", h)
	}

	rel, err := db.BeginRelease(ctx, c, r.ID)
	if err != nil || !rel.Held {
		t.Fatalf("BeginRelease = %+v, %v", rel, err)
	}
	if got := heldInListings(t, db, c, r.ID, 10, 20, 30); !cmp.Equal(got, []bool{false, false, false}) {
		t.Errorf("held in listings after release = %v, want all false", got)
	}
	if rec, _ := db.Get(ctx, c, r.ID); rec.Held || !rec.CustomTime.Equal(r.CustomTime) || pending(t, db, c, r.ID) != 1 {
		t.Errorf("while releasing: held %v, customTime %s, tokens %d; want false, unchanged, 1", rec.Held, rec.CustomTime, pending(t, db, c, r.ID))
	}
	later := r.CustomTime.Add(48 * time.Hour)
	if held, err := db.EndRelease(ctx, c, r.ID, rel.Token, later); err != nil || held {
		t.Fatalf("EndRelease = %v, %v", held, err)
	}
	if rec, _ := db.Get(ctx, c, r.ID); rec.Held || !rec.CustomTime.Equal(later) || pending(t, db, c, r.ID) != 0 {
		t.Errorf("after release: held %v, customTime %s, tokens %d; want false, %s, 0", rec.Held, rec.CustomTime, pending(t, db, c, r.ID), later)
	}
	// Releasing a trace that is not held records nothing.
	if rel, err := db.BeginRelease(ctx, c, r.ID); err != nil || rel.Held || pending(t, db, c, r.ID) != 0 {
		t.Errorf("BeginRelease of a released trace = %+v, %v", rel, err)
	}
}

// A hold and a release racing: each op's EndOp removes its token only if
// the hold is still what it left the objects in, so the loser's token stays
// for the repair step.
func TestEndOpKeepsTokenWhenHoldChanged(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	c := canvasID(1)
	r := record(c, 0, 10)
	put(t, db, r)
	h, err := db.BeginHold(ctx, c, r.ID, HoldSpec{}, base, 10)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := db.BeginRelease(ctx, c, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if held, err := db.EndRelease(ctx, c, r.ID, rel.Token, base.Add(time.Hour)); err != nil || held {
		t.Fatalf("EndRelease = %v, %v", held, err)
	}
	// The hold's object pass ran after the release's: its objects are held,
	// the index says released.
	if held, err := db.EndOp(ctx, c, r.ID, h.Token, true); err != nil || held {
		t.Fatalf("EndOp = %v, %v; want not held", held, err)
	}
	if n := pending(t, db, c, r.ID); n != 1 {
		t.Errorf("tokens = %d, want the hold's 1 left for the repair step", n)
	}
}

func TestHoldQuota(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	a, b := record(c, 0, 1), record(c, 1, 1)
	put(t, db, a, b)
	hold(t, db, c, a.ID, "", base)
	if _, err := db.BeginHold(t.Context(), c, b.ID, HoldSpec{}, base, 1); !errors.Is(err, traces.ErrExhausted) {
		t.Errorf("BeginHold past the quota: %v, want ErrExhausted", err)
	}
	if _, err := db.BeginHold(t.Context(), c, a.ID, HoldSpec{Reason: "again"}, base, 1); err != nil {
		t.Errorf("BeginHold of a held trace at the quota: %v", err)
	}
	if n := pending(t, db, c, b.ID); n != 0 {
		t.Errorf("a refused hold left %d tokens", n)
	}
}

func TestHoldUnknownTrace(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(2)
	id := traces.NewTraceID(base)
	if _, err := db.BeginHold(t.Context(), c, id, HoldSpec{}, base, 10); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("BeginHold: err %v, want ErrNotFound", err)
	}
	if _, err := db.BeginRelease(t.Context(), c, id); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("BeginRelease: err %v, want ErrNotFound", err)
	}
}

// TestHolds: Holds lists only the canvas's held traces, most recently held
// first.
func TestHolds(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	c, elsewhere := canvasID(3), canvasID(4)
	var rs []traces.Record
	for i := range 4 {
		rs = append(rs, record(c, i, 7))
	}
	foreign := record(elsewhere, 0, 7)
	put(t, db, append(rs, foreign)...)
	for i, r := range rs[:3] {
		hold(t, db, c, r.ID, "r"+string(rune('a'+i)), base.Add(time.Duration(i)*time.Minute))
	}
	hold(t, db, elsewhere, foreign.ID, "", base)
	got, err := db.Holds(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	want := []Hold{
		{ID: rs[2].ID, Reason: "rc", HeldAt: base.Add(2 * time.Minute)},
		{ID: rs[1].ID, Reason: "rb", HeldAt: base.Add(time.Minute)},
		{ID: rs[0].ID, Reason: "ra", HeldAt: base},
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Holds (-want +got):\n%s", d)
	}
	if got, err := db.Holds(ctx, canvasID(5)); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Holds of an empty canvas = %#v, %v; want an empty slice", got, err)
	}
}
