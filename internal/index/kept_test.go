package index

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/internal/traces"
)

// keptModel judges traces the way the kept queries must, from the records
// alone: the reference the SQL is compared with.
type keptModel struct {
	recs      []traces.Record
	held      map[traces.TraceID]bool
	forgotten map[traces.TLID]bool
	keep      int
	r         Retention
}

func (m keptModel) kept(id traces.TraceID) traces.Kept {
	var rec traces.Record
	for _, r := range m.recs {
		if r.ID == id {
			rec = r
		}
	}
	var k traces.Kept
	tlids := slices.Clone(rec.TLIDs)
	slices.Sort(tlids)
	for _, tl := range slices.Compact(tlids) {
		if m.forgotten[tl] {
			continue
		}
		newer := 0
		for _, o := range m.recs {
			if slices.Contains(o.TLIDs, tl) && bytes.Compare(o.ID[:], id[:]) > 0 {
				newer++
			}
		}
		if newer < m.keep {
			k.LatestFor = append(k.LatestFor, tl)
		}
	}
	expires := rec.CustomTime.Add(m.r.Period)
	k.Recent = expires.After(m.r.Now)
	if !m.held[id] && len(k.LatestFor) == 0 {
		k.ExpiresAfter = expires
	}
	return k
}

func (m keptModel) summary(r traces.Record) traces.Summary {
	s := summary(r)
	s.Held = m.held[r.ID]
	s.Kept = m.kept(r.ID)
	return s
}

// list is the model's newest-first list of tlid (0: every trace).
func (m keptModel) list(tlid traces.TLID, limit int) []traces.Summary {
	out := []traces.Summary{}
	for i := len(m.recs) - 1; i >= 0 && len(out) < limit; i-- {
		if tlid == 0 || slices.Contains(m.recs[i].TLIDs, tlid) {
			out = append(out, m.summary(m.recs[i]))
		}
	}
	return out
}

// keptCanvas saves 14 traces of handler 1 one hour apart, the oldest 12 of
// which also call function 100, and 3 of handler 2 among them; toplevel 2
// is then forgotten and the third-oldest trace held. The clock is 6 days
// after the newest: retention 7d leaves the newest day's worth recent.
func keptCanvas(t *testing.T, db *DB, c traces.CanvasID) keptModel {
	t.Helper()
	m := keptModel{held: map[traces.TraceID]bool{}, forgotten: map[traces.TLID]bool{}, keep: 10}
	for i := range 14 {
		var r traces.Record
		switch {
		case i%5 == 4:
			r = record(c, i*3600, 2, 100)
		case i < 12:
			r = record(c, i*3600, 1, 100)
		default:
			r = record(c, i*3600, 1)
		}
		put(t, db, r)
		m.recs = append(m.recs, r)
	}
	if err := db.ForgetToplevel(t.Context(), c, 2, base.Add(20*time.Hour)); err != nil {
		t.Fatal(err)
	}
	m.forgotten[2] = true
	hold(t, db, c, m.recs[2].ID, "", base)
	m.held[m.recs[2].ID] = true
	newest := m.recs[len(m.recs)-1].CustomTime
	m.r = Retention{Period: 7 * 24 * time.Hour, Keep: 10, Now: newest.Add(6*24*time.Hour + 30*time.Minute)}
	return m
}

// TestKeptListsAgreeWithTheModel: every kept listing (a toplevel's, the
// batch, search with and without a tlid, a single read) judges each trace
// as the model does, and so again under a canvas keep-N of its own.
func TestKeptListsAgreeWithTheModel(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	c := canvasID(1)
	m := keptCanvas(t, db, c)
	check := func(t *testing.T) {
		t.Helper()
		for _, tl := range []traces.TLID{1, 2, 100, 7} {
			got, err := db.RecentKept(ctx, c, tl, 100, m.r)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(m.list(tl, 100), got); d != "" {
				t.Errorf("RecentKept tlid %d (-want +got):\n%s", tl, d)
			}
		}
		many, err := db.RecentManyKept(ctx, c, []traces.TLID{100, 1, 2, 7}, 4, m.r)
		if err != nil {
			t.Fatal(err)
		}
		want := map[traces.TLID][]traces.Summary{1: m.list(1, 4), 2: m.list(2, 4), 100: m.list(100, 4), 7: m.list(7, 4)}
		if d := cmp.Diff(want, many); d != "" {
			t.Errorf("RecentManyKept (-want +got):\n%s", d)
		}
		all := Range{High: maxTraceID, Limit: 100}
		got, err := db.Search(ctx, c, all, m.r)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(m.list(0, 100), got); d != "" {
			t.Errorf("Search (-want +got):\n%s", d)
		}
		tl := traces.TLID(100)
		got, err = db.Search(ctx, c, Range{High: maxTraceID, Limit: 100, TLID: &tl}, m.r)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(m.list(100, 100), got); d != "" {
			t.Errorf("Search tlid 100 (-want +got):\n%s", d)
		}
		for _, r := range m.recs {
			rec, k, err := db.GetKept(ctx, c, r.ID, m.r)
			if err != nil {
				t.Fatal(err)
			}
			if d := cmp.Diff(m.kept(r.ID), k); d != "" || rec.ID != r.ID || rec.Held != m.held[r.ID] {
				t.Errorf("GetKept %s: held %v (-want +got):\n%s", r.ID, rec.Held, d)
			}
		}
	}
	t.Run("default keep", check)
	if _, err := db.SetCanvasKeep(ctx, c, 3, 10, base); err != nil {
		t.Fatal(err)
	}
	m.keep = 3
	t.Run("canvas keep 3", check)
	// The default applies again once the canvas's own keep is removed, and
	// a changed default is honoured.
	if _, err := db.SetCanvasKeep(ctx, c, 0, 10, base); err != nil {
		t.Fatal(err)
	}
	m.keep, m.r.Keep = 12, 12
	t.Run("default keep 12", check)
	// Later, nothing is recent any more.
	m.r.Now = m.r.Now.Add(30 * 24 * time.Hour)
	t.Run("a month later", check)
}

var maxTraceID = traces.TraceID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// TestSearchRange: the range bounds are inclusive, newest first, limited;
// an empty range answers without a query; with a tlid only the traces that
// touched it.
func TestSearchRange(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	c, other := canvasID(1), canvasID(2)
	var recs []traces.Record
	for i := range 20 {
		r := record(c, i, traces.TLID(1+i%2))
		put(t, db, r, record(other, i, 1))
		recs = append(recs, r)
	}
	r := Retention{Period: 24 * time.Hour, Keep: 10, Now: base}
	ids := func(list []traces.Summary) []traces.TraceID {
		out := []traces.TraceID{}
		for _, s := range list {
			out = append(out, s.ID)
		}
		return out
	}
	want := func(lo, hi int, tlid traces.TLID, limit int) []traces.TraceID {
		out := []traces.TraceID{}
		for i := hi; i >= lo && len(out) < limit; i-- {
			if tlid == 0 || slices.Contains(recs[i].TLIDs, tlid) {
				out = append(out, recs[i].ID)
			}
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		lo, hi int
		tlid   traces.TLID
		limit  int
	}{
		{"all", 0, 19, 0, 100},
		{"limited", 0, 19, 0, 7},
		{"middle", 5, 12, 0, 100},
		{"one", 9, 9, 0, 100},
		{"tlid 2", 3, 16, 2, 100},
		{"tlid 1 limited", 0, 19, 1, 3},
	} {
		q := Range{Low: recs[tc.lo].ID, High: recs[tc.hi].ID, Limit: tc.limit}
		if tc.tlid != 0 {
			q.TLID = &tc.tlid
		}
		got, err := db.Search(ctx, c, q, r)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want(tc.lo, tc.hi, tc.tlid, tc.limit), ids(got)); d != "" {
			t.Errorf("%s (-want +got):\n%s", tc.name, d)
		}
	}
	got, err := db.Search(ctx, c, Range{Low: recs[5].ID, High: recs[4].ID, Limit: 10}, r)
	if err != nil || len(got) != 0 || got == nil {
		t.Errorf("empty range = %v, %v; want an empty slice", got, err)
	}
	if _, err := db.Search(ctx, c, Range{High: maxTraceID}, r); !errors.Is(err, traces.ErrInvalid) {
		t.Errorf("limit 0: %v, want ErrInvalid", err)
	}
}

// TestSetCanvasKeep: a raise marks every live toplevel due and bumps its rev
// (even one already marked), so a verdict read with the old keep is
// refused; a lowering and a repeat change nothing; GC's Keepers read the
// canvas's keep; a deleted canvas refuses.
func TestSetCanvasKeep(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	c := canvasID(3)
	for i := range 30 {
		put(t, db, record(c, i, 1), record(c, 100+i, 2))
	}
	if err := db.ForgetToplevel(ctx, c, 2, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	ks, err := db.Keepers(ctx, c, base.Add(time.Hour), 10, nil)
	if err != nil || len(ks.Toplevels) != 1 || len(ks.Toplevels[0].Keepers) != 10 {
		t.Fatalf("Keepers before = %+v, %v; want toplevel 1 with 10 keepers", ks.Toplevels, err)
	}
	old := ks.Toplevels[0]
	if err := db.SetRenewAfter(ctx, c, []RenewAfter{{TLID: 1, Rev: old.Rev, Value: base}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := db.MarkCanvasesDue(ctx, traces.CanvasID{}, 10); err != nil { // already '-infinity'
		t.Fatal(err)
	}
	ch, err := db.SetCanvasKeep(ctx, c, 25, 10, base)
	if err != nil || !ch.Raised || ch.Marked != 1 || ch.Prev != 0 || ch.Keep != 25 {
		t.Fatalf("raise to 25 = %+v, %v; want raised, 1 marked", ch, err)
	}
	if got := count(t, db, `SELECT count(*) FROM toplevels WHERE canvas_id = $1 AND renew_after = '-infinity' AND tlid = 1 AND rev > $2`, [16]byte(c), old.Rev+1); got != 1 {
		t.Errorf("toplevel 1 after the raise: %d rows due with a bumped rev, want 1", got)
	}
	// A pass that read the old keepers cannot record its verdict.
	if err := db.SetRenewAfter(ctx, c, []RenewAfter{{TLID: 1, Rev: old.Rev + 1, Value: base}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := count(t, db, `SELECT count(*) FROM toplevels WHERE canvas_id = $1 AND tlid = 1 AND renew_after = '-infinity'`, [16]byte(c)); got != 1 {
		t.Errorf("a stale verdict overwrote the mark")
	}
	ks, err = db.Keepers(ctx, c, time.Time{}, 10, nil)
	if err != nil || len(ks.Toplevels) != 1 || len(ks.Toplevels[0].Keepers) != 25 {
		t.Fatalf("Keepers after the raise = %+v, %v; want toplevel 1 with 25 keepers", ks.Toplevels, err)
	}
	if got, err := db.CanvasKeep(ctx, c); got != 25 || err != nil {
		t.Errorf("CanvasKeep = %d, %v; want 25", got, err)
	}
	for _, tc := range []struct {
		keep, def int
		raised    bool
	}{
		{25, 10, false}, // a repeat
		{5, 10, false},  // lower
		{0, 4, false},   // back to a default below it
		{0, 6, false},   // the default, unchanged own: none → none
		{7, 6, true},    // above the default
		{0, 8, true},    // back to a default above it
	} {
		ch, err := db.SetCanvasKeep(ctx, c, tc.keep, tc.def, base)
		if err != nil || ch.Raised != tc.raised {
			t.Errorf("SetCanvasKeep(%d, default %d) = %+v, %v; want raised %v", tc.keep, tc.def, ch, err, tc.raised)
		}
	}
	if got, err := db.CanvasKeep(ctx, c); got != 0 || err != nil {
		t.Errorf("CanvasKeep after reset = %d, %v; want 0", got, err)
	}
	if err := db.MarkCanvasDeleted(ctx, c, base); err != nil {
		t.Fatal(err)
	}
	if _, err := db.SetCanvasKeep(ctx, c, 20, 10, base); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("SetCanvasKeep on a deleted canvas: %v, want ErrNotFound", err)
	}
}

// TestHoldEnds: a hold's end is recorded, changed or removed by a repeat
// (kept when the repeat says nothing), listed with its holder; EndedHolds
// finds the ended ones across canvases; BeginExpire releases only a hold
// whose end has come, and a release clears the end.
func TestHoldEnds(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	c1, c2 := canvasID(1), canvasID(2)
	a, b, d := record(c1, 1, 1), record(c2, 2, 1), record(c1, 3, 1)
	put(t, db, a, b, d)
	begin := func(c traces.CanvasID, id traces.TraceID, h HoldSpec) Holding {
		t.Helper()
		got, err := db.BeginHold(ctx, c, id, h, base, 100)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.EndOp(ctx, c, id, got.Token, true); err != nil {
			t.Fatal(err)
		}
		return got
	}
	h := begin(c1, a.ID, HoldSpec{Reason: "pin", SetUntil: true, Until: base.Add(time.Hour), By: "alice"})
	if !h.Until.Equal(base.Add(time.Hour)) || h.By != "alice" || h.Reason != "pin" {
		t.Errorf("first hold = %+v", h.Hold)
	}
	h = begin(c1, a.ID, HoldSpec{By: "bob"}) // says nothing of the end: kept, and the holder too
	if !h.Until.Equal(base.Add(time.Hour)) || h.By != "alice" || h.Reason != "pin" {
		t.Errorf("repeat without an end = %+v", h.Hold)
	}
	h = begin(c1, a.ID, HoldSpec{SetUntil: true, Until: base.Add(3 * time.Hour)})
	if !h.Until.Equal(base.Add(3 * time.Hour)) {
		t.Errorf("repeat with a later end = %+v", h.Hold)
	}
	begin(c2, b.ID, HoldSpec{SetUntil: true, Until: base.Add(2 * time.Hour)})
	begin(c1, d.ID, HoldSpec{SetUntil: true, Until: base.Add(time.Minute)})
	h = begin(c1, d.ID, HoldSpec{SetUntil: true}) // no end any more
	if !h.Until.IsZero() {
		t.Errorf("repeat removing the end = %+v", h.Hold)
	}
	hs, err := db.Holds(ctx, c1)
	if err != nil || len(hs) != 2 {
		t.Fatalf("Holds = %+v, %v", hs, err)
	}
	for _, h := range hs {
		if h.ID == a.ID && (h.By != "alice" || !h.Until.Equal(base.Add(3*time.Hour))) {
			t.Errorf("listed hold of a = %+v", h)
		}
	}

	ended, err := db.EndedHolds(ctx, base.Add(150*time.Minute), 10)
	if err != nil || len(ended) != 1 || ended[0].ID != b.ID || ended[0].Canvas != c2 {
		t.Errorf("EndedHolds at +2.5h = %+v, %v; want b", ended, err)
	}
	ended, err = db.EndedHolds(ctx, base.Add(5*time.Hour), 1)
	if err != nil || len(ended) != 1 || ended[0].ID != b.ID {
		t.Errorf("EndedHolds at +5h, limit 1 = %+v, %v; want b (the earliest)", ended, err)
	}
	if r, err := db.BeginExpire(ctx, c1, a.ID, base.Add(2*time.Hour)); err != nil || r.Held {
		t.Errorf("BeginExpire before the end = %+v, %v; want nothing released", r, err)
	}
	r, err := db.BeginExpire(ctx, c1, a.ID, base.Add(3*time.Hour))
	if err != nil || !r.Held {
		t.Fatalf("BeginExpire at the end = %+v, %v; want released", r, err)
	}
	if _, err := db.EndRelease(ctx, c1, a.ID, r.Token, base.Add(3*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if got := count(t, db, `SELECT count(*) FROM traces WHERE canvas_id = $1 AND trace_id = $2 AND held_at IS NULL AND hold_until IS NULL AND held_by IS NULL AND hold_reason IS NULL`, [16]byte(c1), [16]byte(a.ID)); got != 1 {
		t.Errorf("the expired hold left its end, holder or reason behind")
	}
	if r, err := db.BeginExpire(ctx, c1, d.ID, base.Add(1000*time.Hour)); err != nil || r.Held {
		t.Errorf("BeginExpire of an endless hold = %+v, %v; want nothing released", r, err)
	}
}
