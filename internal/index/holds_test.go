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

// TestSetHoldClearHold: a hold marks the traces row and every trace_tlids
// row of the trace (not its neighbours'); repeating it keeps heldAt, keeps
// the reason when none is given and replaces it when one is; clearing unmarks all of them and moves custom_time
// forward only.
func TestSetHoldClearHold(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	c := canvasID(1)
	r := record(c, 0, 10, 20, 30)
	other := record(c, 1, 10, 20)
	put(t, db, r, other)

	at := base.Add(time.Hour)
	h, err := db.SetHold(ctx, c, r.ID, "bug 42", at)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Hold{ID: r.ID, Reason: "bug 42", HeldAt: at}, h); d != "" {
		t.Errorf("SetHold (-want +got):\n%s", d)
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

	h, err = db.SetHold(ctx, c, r.ID, "", at.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Hold{ID: r.ID, Reason: "bug 42", HeldAt: at}, h); d != "" {
		t.Errorf("repeated SetHold without reason (-want +got):\n%s", d)
	}
	h, err = db.SetHold(ctx, c, r.ID, "bug 43", at.Add(2*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(Hold{ID: r.ID, Reason: "bug 43", HeldAt: at}, h); d != "" {
		t.Errorf("repeated SetHold with a new reason (-want +got):\n%s", d)
	}

	later := r.CustomTime.Add(48 * time.Hour)
	if err := db.ClearHold(ctx, c, r.ID, later); err != nil {
		t.Fatal(err)
	}
	if got := heldInListings(t, db, c, r.ID, 10, 20, 30); !cmp.Equal(got, []bool{false, false, false}) {
		t.Errorf("held in listings after clear = %v, want all false", got)
	}
	rec, err := db.Get(ctx, c, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Held || !rec.CustomTime.Equal(later) {
		t.Errorf("after clear: held %v, customTime %s; want false, %s", rec.Held, rec.CustomTime, later)
	}
	// Clearing again, with an older time or none, is harmless and never
	// moves custom_time back.
	for _, ct := range []time.Time{r.CustomTime, {}} {
		if err := db.ClearHold(ctx, c, r.ID, ct); err != nil {
			t.Fatal(err)
		}
	}
	if rec, _ := db.Get(ctx, c, r.ID); !rec.CustomTime.Equal(later) {
		t.Errorf("customTime = %s after clearing with older times, want %s", rec.CustomTime, later)
	}
}

func TestHoldUnknownTrace(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(2)
	id := traces.NewTraceID(base)
	if _, err := db.SetHold(t.Context(), c, id, "", base); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("SetHold: err %v, want ErrNotFound", err)
	}
	if err := db.ClearHold(t.Context(), c, id, base); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("ClearHold: err %v, want ErrNotFound", err)
	}
}

// TestHoldsAndCount: Holds lists only the canvas's held traces, most
// recently held first; HeldCount stops at its cap.
func TestHoldsAndCount(t *testing.T) {
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
		if _, err := db.SetHold(ctx, c, r.ID, "r"+string(rune('a'+i)), base.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.SetHold(ctx, elsewhere, foreign.ID, "", base); err != nil {
		t.Fatal(err)
	}
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
	for _, tc := range []struct{ atMost, want int }{{100, 3}, {3, 3}, {2, 2}} {
		n, err := db.HeldCount(ctx, c, tc.atMost)
		if err != nil || n != tc.want {
			t.Errorf("HeldCount(atMost %d) = %d, %v; want %d", tc.atMost, n, err, tc.want)
		}
	}
	if got, err := db.Holds(ctx, canvasID(5)); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Holds of an empty canvas = %#v, %v; want an empty slice", got, err)
	}
}
