package index

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/internal/traces"
)

func TestDueCanvases(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	var want []traces.CanvasID
	for i := byte(1); i <= 5; i++ {
		c := canvasID(i)
		put(t, db, record(c, 0, 1))               // custom_time base: due
		put(t, db, record(canvasID(100+i), 0, 1)) // made fresh below
		want = append(want, c)
	}
	if _, err := db.pool.Exec(t.Context(), `UPDATE toplevels SET renew_after = $1 WHERE canvas_id >= $2`,
		base.Add(48*time.Hour), [16]byte(canvasID(100))); err != nil {
		t.Fatal(err)
	}
	if err := db.ForgetToplevel(t.Context(), canvasID(5), 1, base); err != nil {
		t.Fatal(err)
	}
	want = want[:4] // canvas 5's only toplevel is deleted
	got, err := db.DueCanvases(t.Context(), base.Add(time.Hour))
	if err != nil {
		t.Fatalf("DueCanvases: %v", err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("due canvases (-want +got):\n%s", diff)
	}
	none, err := db.DueCanvases(t.Context(), base)
	if err != nil || len(none) != 0 {
		t.Errorf("DueCanvases(before = oldest renew_after) = %v, %v; want none (strictly before)", none, err)
	}
}

func TestKeepersLatestPerToplevelDeduplicated(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	// Toplevel 1 gets traces 0..4, toplevel 2 touches traces 3..4 and 5,
	// toplevel 3 is deleted, toplevel 4 is not due.
	var rs []traces.Record
	for i := range 5 {
		r := record(c, i, 1)
		if i >= 3 {
			r.TLIDs = append(r.TLIDs, 2)
		}
		rs = append(rs, r)
	}
	rs = append(rs, record(c, 5, 2), record(c, 6, 3), record(c, 7, 4))
	rs[4].Layers = 2
	put(t, db, rs...)
	if _, err := db.pool.Exec(t.Context(), `UPDATE traces SET held_at = $3 WHERE canvas_id = $1 AND trace_id = $2`,
		[16]byte(c), [16]byte(rs[3].ID), base); err != nil {
		t.Fatal(err)
	}
	if err := db.ForgetToplevel(t.Context(), c, 3, base); err != nil {
		t.Fatal(err)
	}
	if err := db.SetRenewAfter(t.Context(), c, []RenewAfter{{TLID: 4, Value: base.Add(time.Hour)}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	got, err := db.Keepers(t.Context(), c, base.Add(time.Minute), 3, nil)
	if err != nil {
		t.Fatalf("Keepers: %v", err)
	}
	want := Keepers{
		Toplevels: []DueToplevel{
			{TLID: 1, Keepers: []traces.TraceID{rs[4].ID, rs[3].ID, rs[2].ID}},
			{TLID: 2, Keepers: []traces.TraceID{rs[5].ID, rs[4].ID, rs[3].ID}},
		},
	}
	for _, i := range []int{4, 3, 2, 5} {
		r := rs[i]
		want.Traces = append(want.Traces, Keeper{ID: r.ID, Generation: r.Generation, CustomTime: r.CustomTime, Layers: r.Layers, Held: i == 3})
	}
	// Traces come in first-seen order (toplevel, then newest first).
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Keepers (-want +got):\n%s", diff)
	}
}

func TestKeepersToplevelWithoutTraces(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	r := record(c, 0, 7)
	put(t, db, r)
	if _, err := db.Remove(t.Context(), c, r.ID, r.Generation); err != nil {
		t.Fatal(err)
	}
	got, err := db.Keepers(t.Context(), c, base.Add(time.Minute), 10, nil)
	if err != nil {
		t.Fatalf("Keepers: %v", err)
	}
	want := Keepers{Toplevels: []DueToplevel{{TLID: 7}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Keepers (-want +got):\n%s", diff)
	}
}

func TestMarkRenewedOnlyForward(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	a, b := record(c, 0, 1), record(c, 100, 1)
	put(t, db, a, b)
	if err := db.MarkRenewed(t.Context(), c, []traces.TraceID{a.ID, b.ID}, base.Add(50*time.Second)); err != nil {
		t.Fatalf("MarkRenewed: %v", err)
	}
	for _, tc := range []struct {
		r    traces.Record
		want time.Time
	}{{a, base.Add(50 * time.Second)}, {b, b.CustomTime}} {
		got, err := db.Get(t.Context(), c, tc.r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !got.CustomTime.Equal(tc.want) {
			t.Errorf("custom_time of %s = %s, want %s", tc.r.ID, got.CustomTime, tc.want)
		}
	}
}

func TestSetRenewAfter(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	put(t, db, record(c, 0, 1), record(c, 1, 2), record(c, 2, 3))
	later := base.Add(72 * time.Hour)
	if err := db.SetRenewAfter(t.Context(), c, []RenewAfter{{TLID: 1, Value: later}, {TLID: 3, Value: later}}, time.Minute); err != nil {
		t.Fatalf("SetRenewAfter: %v", err)
	}
	got, err := db.Keepers(t.Context(), c, base.Add(time.Hour), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	var tlids []traces.TLID
	for _, tl := range got.Toplevels {
		tlids = append(tlids, tl.TLID)
	}
	if !slices.Equal(tlids, []traces.TLID{2}) {
		t.Errorf("due toplevels after SetRenewAfter = %v, want [2]", tlids)
	}
}

func TestClaimCanvasExclusive(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c1, c2 := canvasID(1), canvasID(2)
	claim, ok, err := db.ClaimCanvas(t.Context(), c1)
	if err != nil || !ok {
		t.Fatalf("ClaimCanvas(c1) = %v, %v; want ok", ok, err)
	}
	if _, ok, err := db.ClaimCanvas(t.Context(), c1); err != nil || ok {
		t.Errorf("second ClaimCanvas(c1) = %v, %v; want not ok", ok, err)
	}
	other, ok, err := db.ClaimCanvas(t.Context(), c2)
	if err != nil || !ok {
		t.Errorf("ClaimCanvas(c2) = %v, %v; want ok", ok, err)
	}
	other.Release()
	claim.Release()
	claim.Release() // idempotent
	again, ok, err := db.ClaimCanvas(t.Context(), c1)
	if err != nil || !ok {
		t.Fatalf("ClaimCanvas(c1) after Release = %v, %v; want ok", ok, err)
	}
	again.Release()
}
