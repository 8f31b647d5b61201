package history

import (
	"slices"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// The model's tests: small hand-made histories and snapshots, no services.

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func at(h float64) time.Time { return t0.Add(time.Duration(h * float64(time.Hour))) }

func win(from, to float64) Window { return Window{Start: at(from), End: at(to)} }

const day = 24.0

// fixture is a model with traces t1..tn of canvas 0, trace i timestamped
// at hour i (so a higher label is newer), plus a snapshot builder.
type fixture struct {
	m *Model
}

func newFixture(n int) *fixture {
	m := NewModel(canvasIDs(1), 7*24*time.Hour, 2, 10*time.Minute)
	for i := 1; i <= n; i++ {
		ts := at(float64(i))
		m.AddTrace(Trace{Label: i, Canvas: 0, ID: traces.NewTraceID(ts), TS: ts})
	}
	return &fixture{m: m}
}

// saved records an acknowledged save of trace l at hour h, generation l.
func (f *fixture) saved(l int, h float64, names ...traces.TLID) {
	f.m.AddWrite(Write{Op: l, Trace: l, Kind: WriteSave, Window: win(h, h), OK: true, Gen: int64(l), Names: names})
}

// trace is trace l's object at generation l with customTime ct, naming names.
func (f *fixture) trace(l int, ct float64, names ...traces.TLID) Object {
	t, _ := f.m.TraceOf(l)
	key := f.m.Key(l)
	return Object{Key: key, Kind: traces.KindTrace, Trace: t.ID, Owner: key, Gen: int64(l), CustomTime: at(ct), Names: names, Listed: names}
}

// layer is layer n of trace l, written for generation l.
func (f *fixture) layer(l, n int, ct float64, names ...traces.TLID) Object {
	t, _ := f.m.TraceOf(l)
	key := traces.LayerKey(f.m.Canvases[0], t.ID, n)
	return Object{Key: key, Kind: traces.KindLayer, Trace: t.ID, Owner: f.m.Key(l), Layer: n, Gen: 100*int64(l) + int64(n),
		CustomTime: at(ct), Names: names, Base: int64(l)}
}

// snap is a snapshot at hour h of objs, every trace object indexed.
func snap(h float64, objs ...Object) *Snapshot {
	s := &Snapshot{At: at(h), Objects: map[string]Object{}, Rows: map[string]int64{}}
	for _, o := range objs {
		s.Objects[o.Key] = o
		if o.Kind == traces.KindTrace {
			s.Rows[o.Key] = o.Gen
		}
	}
	return s
}

func invariants(vs []Violation) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Invariant)
	}
	return out
}

func TestLiveness(t *testing.T) {
	for _, tc := range []struct {
		name        string
		forgets     []Forget
		writes      []Write // of trace 1 (timestamp hour 1) or 30 (hour 30)
		live, dead  bool
		atHour      float64
		description string
	}{
		{name: "never deleted", atHour: 50, live: true},
		{name: "deleted", forgets: []Forget{{TLID: 7, Window: win(20, 20), OK: true}}, atHour: 50, dead: true},
		{name: "deletion failed: neither", forgets: []Forget{{TLID: 7, Window: win(20, 20)}}, atHour: 50},
		{name: "deletion after at: live", forgets: []Forget{{TLID: 7, Window: win(60, 60), OK: true}}, atHour: 50, live: true},
		{name: "old trace after deletion does not revive",
			forgets: []Forget{{TLID: 7, Window: win(20, 20), OK: true}},
			writes:  []Write{{Trace: 1, Window: win(25, 25), OK: true, Names: []traces.TLID{7}}}, atHour: 50, dead: true},
		{name: "newer trace revives",
			forgets: []Forget{{TLID: 7, Window: win(20, 20), OK: true}},
			writes:  []Write{{Trace: 30, Window: win(30, 30), OK: true, Names: []traces.TLID{7}}}, atHour: 50, live: true},
		{name: "failed newer write: maybe revived",
			forgets: []Forget{{TLID: 7, Window: win(20, 20), OK: true}},
			writes:  []Write{{Trace: 30, Window: win(30, 30), Names: []traces.TLID{7}}}, atHour: 50},
		{name: "trace within slack of the deletion: ambiguous",
			forgets: []Forget{{TLID: 7, Window: win(30.05, 30.05), OK: true}},
			writes:  []Write{{Trace: 30, Window: win(30.1, 30.1), OK: true, Names: []traces.TLID{7}}}, atHour: 50},
		{name: "other toplevel named",
			forgets: []Forget{{TLID: 7, Window: win(20, 20), OK: true}},
			writes:  []Write{{Trace: 30, Window: win(30, 30), OK: true, Names: []traces.TLID{8}}}, atHour: 50, dead: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(30)
			for _, fg := range tc.forgets {
				f.m.AddForget(fg)
			}
			for _, w := range tc.writes {
				f.m.AddWrite(w)
			}
			if got := f.m.DefinitelyLive(0, 7, at(tc.atHour)); got != tc.live {
				t.Errorf("DefinitelyLive = %v, want %v", got, tc.live)
			}
			if got := f.m.DefinitelyDead(0, 7, at(tc.atHour)); got != tc.dead {
				t.Errorf("DefinitelyDead = %v, want %v", got, tc.dead)
			}
		})
	}
	t.Run("canvas deletion forgets the deletion", func(t *testing.T) {
		f := newFixture(1)
		f.m.AddForget(Forget{TLID: 7, Window: win(20, 20), OK: true})
		f.m.AddDeletion(CanvasDeletion{Window: win(22, 23), OK: true})
		if f.m.DefinitelyDead(0, 7, at(50)) || f.m.DefinitelyLive(0, 7, at(50)) {
			t.Errorf("a toplevel deleted before its canvas was must be neither certainly dead nor certainly live")
		}
	})
}

func TestHolds(t *testing.T) {
	for _, tc := range []struct {
		name         string
		ops          []HoldOp
		held, unheld bool
	}{
		{name: "never held", unheld: true},
		{name: "held", ops: []HoldOp{{Window: win(1, 2), OK: true}}, held: true},
		{name: "hold failed", ops: []HoldOp{{Window: win(1, 2)}}},
		{name: "released", ops: []HoldOp{{Window: win(1, 2), OK: true}, {Release: true, Window: win(3, 4), OK: true}}, unheld: true},
		{name: "release failed", ops: []HoldOp{{Window: win(1, 2), OK: true}, {Release: true, Window: win(3, 4)}}},
		{name: "overlapping hold and release", ops: []HoldOp{{Window: win(1, 3), OK: true}, {Release: true, Window: win(2, 4), OK: true}}},
		{name: "held again after a release", ops: []HoldOp{{Window: win(1, 2), OK: true}, {Release: true, Window: win(3, 4), OK: true}, {Window: win(5, 6), OK: true}}, held: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(1)
			for _, h := range tc.ops {
				h.Trace = 1
				f.m.AddHold(h)
			}
			if got := f.m.DefinitelyHeld(1, at(10)); got != tc.held {
				t.Errorf("DefinitelyHeld = %v, want %v", got, tc.held)
			}
			if got := f.m.DefinitelyUnheld(1, at(10)); got != tc.unheld {
				t.Errorf("DefinitelyUnheld = %v, want %v", got, tc.unheld)
			}
		})
	}
}

func TestHoldOfAnEarlierObject(t *testing.T) {
	f := newFixture(1)
	f.saved(1, 1, 1)
	f.m.AddHold(HoldOp{Trace: 1, Window: win(2, 2), OK: true})
	f.m.AddDeletion(CanvasDeletion{Window: win(3, 4), OK: true})
	f.saved(1, 5, 1) // saved again: a new object, never held
	if f.m.DefinitelyHeld(1, at(6)) {
		t.Errorf("the hold of the object the canvas deletion removed holds its successor")
	}
	g := newFixture(1)
	g.saved(1, 1, 1)
	g.m.AddHold(HoldOp{Trace: 1, Window: win(2, 2), OK: true})
	g.m.Observe(snap(3)) // gone
	g.saved(1, 5, 1)
	if g.m.DefinitelyHeld(1, at(6)) {
		t.Errorf("the hold of an object seen gone holds its successor")
	}
}

func TestCommitted(t *testing.T) {
	f := newFixture(3)
	f.saved(1, 1)
	f.m.AddWrite(Write{Trace: 2, Kind: WriteSave, Window: win(2, 2)}) // failed
	f.saved(3, 3)
	f.m.Observe(snap(5, f.trace(1, 1))) // 2 and 3 seen absent at hour 5
	for _, tc := range []struct {
		label int
		h     float64
		want  bool
	}{{1, 0.5, false}, {1, 10, true}, {2, 10, false}, {3, 4, true}, {3, 10, false}} {
		if got := f.m.Committed(tc.label, at(tc.h)); got != tc.want {
			t.Errorf("Committed(t%d, hour %v) = %v, want %v", tc.label, tc.h, got, tc.want)
		}
	}
	f.m.AddDeletion(CanvasDeletion{Window: win(6, 7), OK: true})
	if f.m.Committed(1, at(10)) {
		t.Errorf("t1 committed after its canvas was deleted")
	}
}

func TestCheckStep(t *testing.T) {
	const end = 9 * day // the step ends on day 9; customTimes from day 2 on are young
	for _, tc := range []struct {
		name  string
		setup func(f *fixture) (prev, s0, s1 *Snapshot)
		want  []string
	}{{
		name: "young trace deleted",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			f.saved(1, 3*day, 1)
			return nil, snap(8*day, f.trace(1, 3*day, 1)), snap(end)
		},
		want: []string{InvKeep},
	}, {
		name: "old trace of a toplevel with enough newer traces deleted",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			objs := []Object{}
			for l := 1; l <= 3; l++ {
				f.saved(l, 0, 1)
				objs = append(objs, f.trace(l, 0, 1))
			}
			return snap(7*day, objs...), snap(8*day, objs...), snap(end, objs[1:]...)
		},
	}, {
		name: "old keeper deleted",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			f.saved(1, 0, 1)
			f.saved(2, 0, 1)
			a, b := f.trace(1, 0, 1), f.trace(2, 0, 1)
			return snap(7*day, a, b), snap(8*day, a, b), snap(end, b)
		},
		want: []string{InvKeep},
	}, {
		name: "keeper only since the last step: GC had no pass yet",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			f.saved(1, 0, 1)
			a := f.trace(1, 0, 1)
			return snap(7*day, a, f.trace(2, 0, 1), f.trace(3, 0, 1)), snap(8*day, a), snap(end)
		},
	}, {
		name: "keeper of a toplevel deleted before",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			f.saved(1, 0, 1)
			f.m.AddForget(Forget{TLID: 1, Window: win(day, day), OK: true})
			a := f.trace(1, 0, 1)
			return snap(7*day, a), snap(8*day, a), snap(end)
		},
	}, {
		name: "held trace deleted",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			f.saved(1, 0, 1)
			f.saved(2, 0, 1)
			f.saved(3, 0, 1)
			f.m.AddHold(HoldOp{Trace: 1, Window: win(1, 1), OK: true})
			o := []Object{f.trace(1, 0, 1), f.trace(2, 0, 1), f.trace(3, 0, 1)}
			return snap(7*day, o...), snap(8*day, o...), snap(end, o[1:]...)
		},
		want: []string{InvKeep},
	}, {
		name: "trace whose hold raced a release deleted",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			for l := 1; l <= 3; l++ {
				f.saved(l, 0, 1)
			}
			f.m.AddHold(HoldOp{Trace: 1, Window: win(1, 2), OK: true})
			f.m.AddHold(HoldOp{Trace: 1, Release: true, Window: win(1.5, 3), OK: true})
			o := []Object{f.trace(1, 0, 1), f.trace(2, 0, 1), f.trace(3, 0, 1)}
			return snap(7*day, o...), snap(8*day, o...), snap(end, o[1:]...)
		},
	}, {
		name: "unacknowledged trace deleted",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			f.m.AddWrite(Write{Trace: 1, Kind: WriteSave, Window: win(3*day, 3*day), Names: []traces.TLID{1}})
			return nil, snap(8*day, f.trace(1, 3*day, 1)), snap(end)
		},
	}, {
		name: "layer of a held trace deleted",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			for l := 1; l <= 3; l++ {
				f.saved(l, 0, 1)
			}
			f.m.AddWrite(Write{Trace: 1, Kind: WriteLayer, Window: win(1, 1), OK: true, Gen: 1, N: 1, Names: []traces.TLID{5}})
			f.m.AddHold(HoldOp{Trace: 1, Window: win(1, 1), OK: true})
			o := []Object{f.trace(1, 0, 1), f.trace(2, 0, 1), f.trace(3, 0, 1)}
			return nil, snap(8*day, append(o, f.layer(1, 1, 1, 5))...), snap(end, o...)
		},
		want: []string{InvKeepLayer},
	}, {
		name: "unacknowledged layer of a held trace deleted",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			for l := 1; l <= 3; l++ {
				f.saved(l, 0, 1)
			}
			f.m.AddWrite(Write{Trace: 1, Kind: WriteLayer, Window: win(1, 1), Names: []traces.TLID{5}})
			f.m.AddHold(HoldOp{Trace: 1, Window: win(1, 1), OK: true})
			o := []Object{f.trace(1, 0, 1), f.trace(2, 0, 1), f.trace(3, 0, 1)}
			return nil, snap(8*day, append(o, f.layer(1, 1, 1, 5))...), snap(end, o...)
		},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(3)
			prev, s0, s1 := tc.setup(f)
			if got := invariants(f.m.CheckStep(prev, s0, s1)); !slices.Equal(got, tc.want) {
				t.Errorf("violations %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckSnapshotAndBetween(t *testing.T) {
	f := newFixture(3)
	f.saved(1, 1, 1)
	f.m.AddWrite(Write{Trace: 2, Kind: WriteSave, Window: win(1, 1), Names: []traces.TLID{1}}) // failed
	f.saved(3, 1, 1)
	f.m.AddWrite(Write{Trace: 1, Kind: WriteLayer, Window: win(2, 2), OK: true, Gen: 1, N: 1, Names: []traces.TLID{4}})
	s := snap(3, f.trace(1, 1, 1), f.trace(2, 1, 1), f.trace(3, 1, 1), f.layer(1, 1, 2, 4))
	delete(s.Rows, f.m.Key(1)) // committed, present, not indexed
	delete(s.Rows, f.m.Key(2)) // never acknowledged: an orphan may be unindexed
	if got := invariants(f.m.CheckSnapshot(s)); !slices.Equal(got, []string{InvReadable}) {
		t.Errorf("CheckSnapshot: %v, want [%s]", got, InvReadable)
	}
	later := snap(4, f.trace(1, 1, 1), f.trace(2, 1, 1)) // t3 and t1's layer gone, no step between
	if got := invariants(f.m.CheckBetween(s, later)); !slices.Equal(got, []string{InvVanished, InvVanished}) {
		t.Errorf("CheckBetween: %v, want two %s", got, InvVanished)
	}

	g := newFixture(2)
	g.saved(1, 1, 1)
	g.m.AddDeletion(CanvasDeletion{Window: win(2, 3), OK: true})
	g.saved(2, 2.5, 1) // overlaps the deletion: may survive it
	left := snap(4, g.trace(1, 1, 1), g.trace(2, 1, 1))
	if got := invariants(g.m.CheckSnapshot(left)); !slices.Equal(got, []string{InvCanvasDeleted}) {
		t.Errorf("canvas deletion leftovers: %v, want [%s]", got, InvCanvasDeleted)
	}
}

// released: a trace object held after an acknowledged release that began
// once every hold call had ended; not when a hold call may come after the
// release, nor while a hold stands, nor for a layer (left to hold-leak).
func TestCheckSnapshotReleased(t *testing.T) {
	f := newFixture(4)
	for l := 1; l <= 4; l++ {
		f.saved(l, 0, 1)
	}
	f.m.AddHold(HoldOp{Trace: 1, Window: win(1, 1), OK: true})
	f.m.AddHold(HoldOp{Trace: 1, Release: true, Window: win(2, 2), OK: true})
	f.m.AddHold(HoldOp{Trace: 2, Window: win(1, 3), OK: true}) // may come after the release
	f.m.AddHold(HoldOp{Trace: 2, Release: true, Window: win(2, 2), OK: true})
	f.m.AddHold(HoldOp{Trace: 3, Window: win(1, 1), OK: true})
	f.m.AddHold(HoldOp{Trace: 4, Window: win(1, 1), OK: true})
	f.m.AddHold(HoldOp{Trace: 4, Release: true, Window: win(2, 2), OK: true})
	objs := []Object{f.trace(1, 2, 1), f.trace(2, 2, 1), f.trace(3, 2, 1), f.trace(4, 2, 1), f.layer(4, 1, 2, 1)}
	for i := range 4 {
		objs[i].Held = true
	}
	objs[3].Held = false
	objs[4].Held = true
	vs := f.m.CheckSnapshot(snap(3, objs...))
	if got := invariants(vs); !slices.Equal(got, []string{InvReleased}) || vs[0].Label != 1 {
		t.Errorf("CheckSnapshot: %v, want [%s] of t1", vs, InvReleased)
	}
}

func TestCheckFinal(t *testing.T) {
	const end = 40 * day
	for _, tc := range []struct {
		name  string
		setup func(f *fixture) *Snapshot
		want  []string
	}{{
		name: "keepers stay",
		setup: func(f *fixture) *Snapshot {
			f.saved(1, 0, 1)
			f.saved(2, 0, 1)
			return snap(end, f.trace(1, 30*day, 1), f.trace(2, 30*day, 1))
		},
	}, {
		name: "a trace with enough newer ones outlives its retention",
		setup: func(f *fixture) *Snapshot {
			for l := 1; l <= 3; l++ {
				f.saved(l, 0, 1)
			}
			return snap(end, f.trace(1, 30*day, 1), f.trace(2, 30*day, 1), f.trace(3, 30*day, 1))
		},
		want: []string{InvExpire},
	}, {
		name: "newer traces that do not certainly exist do not count",
		setup: func(f *fixture) *Snapshot {
			f.saved(1, 0, 1)
			f.m.AddWrite(Write{Trace: 2, Kind: WriteSave, Window: win(0, 0), Names: []traces.TLID{1}})
			f.m.AddWrite(Write{Trace: 3, Kind: WriteSave, Window: win(0, 0), Names: []traces.TLID{1}})
			return snap(end, f.trace(1, 30*day, 1), f.trace(2, 30*day, 1), f.trace(3, 30*day, 1))
		},
	}, {
		name: "keeper of a dead toplevel outlives its retention",
		setup: func(f *fixture) *Snapshot {
			f.saved(1, 0, 1)
			f.m.AddForget(Forget{TLID: 1, Window: win(day, day), OK: true})
			return snap(end, f.trace(1, 30*day, 1))
		},
		want: []string{InvExpire},
	}, {
		name: "maybe held",
		setup: func(f *fixture) *Snapshot {
			for l := 1; l <= 3; l++ {
				f.saved(l, 0, 1)
			}
			f.m.AddHold(HoldOp{Trace: 1, Window: win(1, 1)})
			o := f.trace(1, 0, 1)
			o.Held = true
			return snap(end, o, f.trace(2, 30*day, 1), f.trace(3, 30*day, 1))
		},
	}, {
		name: "hold leaks on a layer",
		setup: func(f *fixture) *Snapshot {
			f.saved(1, 0, 1)
			f.m.AddHold(HoldOp{Trace: 1, Window: win(1, 1), OK: true})
			f.m.AddHold(HoldOp{Trace: 1, Release: true, Window: win(2, 2), OK: true})
			l := f.layer(1, 1, 0, 1)
			l.Held = true
			return snap(end, f.trace(1, 30*day, 1), l)
		},
		want: []string{InvHoldLeak},
	}, {
		name: "layer of an old generation",
		setup: func(f *fixture) *Snapshot {
			f.saved(1, 0, 1)
			l := f.layer(1, 1, 0, 1)
			l.Base = 99
			return snap(end, f.trace(1, 30*day, 1), l)
		},
		want: []string{InvExpireLayer},
	}, {
		name: "index row without object",
		setup: func(f *fixture) *Snapshot {
			f.saved(1, 0, 1)
			s := snap(end)
			s.Rows[f.m.Key(1)] = 1
			return s
		},
		want: []string{InvIndexRow},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(3)
			s := tc.setup(f)
			if got := invariants(f.m.CheckFinal(s)); !slices.Equal(got, tc.want) {
				t.Errorf("violations %v, want %v", got, tc.want)
			}
		})
	}
}

func TestHoldEnds(t *testing.T) {
	until := func(from, to, end float64) HoldOp {
		return HoldOp{Window: win(from, to), OK: true, Until: at(end), UntilMax: at(end)}
	}
	for _, tc := range []struct {
		name     string
		ops      []HoldOp
		h        float64 // when to judge
		held     bool
		endsBy   float64 // -1: not every hold ends
		noneHeld bool    // EndedBy with the zero time
	}{
		{name: "held until its end", ops: []HoldOp{until(1, 2, 20)}, h: 10, held: true, endsBy: 20},
		{name: "not held past its end", ops: []HoldOp{until(1, 2, 20)}, h: 30, endsBy: 20},
		{name: "a failed hold's end counts", ops: []HoldOp{until(1, 2, 20), {Window: win(3, 4), Until: at(12), UntilMax: at(12)}}, h: 15, endsBy: 20},
		{name: "a hold with no end given keeps the end", ops: []HoldOp{until(1, 2, 20), {Window: win(3, 4), OK: true}}, h: 25, endsBy: -1},
		{name: "an endless hold after an end", ops: []HoldOp{until(1, 2, 20), {Window: win(3, 4), OK: true, NoEnd: true}}, h: 25, held: true, endsBy: -1},
		{name: "an end after an endless hold", ops: []HoldOp{{Window: win(1, 2), OK: true, NoEnd: true}, until(3, 4, 20)}, h: 10, held: true, endsBy: 20},
		{name: "an end overlapping an endless hold", ops: []HoldOp{{Window: win(1, 4), OK: true, NoEnd: true}, until(3, 4, 20)}, h: 25, endsBy: -1},
		{name: "released", ops: []HoldOp{{Window: win(1, 2), OK: true}, {Release: true, Window: win(3, 4), OK: true}}, h: 10, endsBy: 0, noneHeld: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(1)
			for i, h := range tc.ops {
				h.Op, h.Trace = i+1, 1
				f.m.AddHold(h)
			}
			if got := f.m.DefinitelyHeld(1, at(tc.h)); got != tc.held {
				t.Errorf("DefinitelyHeld = %v, want %v", got, tc.held)
			}
			e, ok := f.m.EndedBy(1, at(tc.h))
			switch {
			case tc.endsBy < 0 && ok:
				t.Errorf("EndedBy = %s, want no end", stamp(e))
			case tc.endsBy >= 0 && (!ok || tc.noneHeld != e.IsZero() || (!tc.noneHeld && !e.Equal(at(tc.endsBy)))):
				t.Errorf("EndedBy = %s, %v, want hour %v", stamp(e), ok, tc.endsBy)
			}
		})
	}
}

func TestKeeps(t *testing.T) {
	f := newFixture(1) // default keep 2
	f.m.AddKeep(KeepChange{Keep: 5, Window: win(1, 2), OK: true})
	f.m.AddKeep(KeepChange{Keep: 1, Window: win(3, 4)}) // failed: maybe
	f.m.AddKeep(KeepChange{Keep: 10, Window: win(6, 7), OK: true})
	f.m.AddKeep(KeepChange{Keep: 0, Window: win(9, 10), OK: true})
	for _, tc := range []struct {
		from, to float64
		want     []int
	}{
		{0, 0, []int{2}},
		{0.5, 1.5, []int{2, 5}},
		{2.5, 2.5, []int{5}},
		{5, 5, []int{1, 5}},
		{8, 8, []int{10}},
		{5, 8, []int{1, 5, 10}},
		{11, 11, []int{2}},
	} {
		if got := f.m.keepsIn(0, at(tc.from), at(tc.to)); !slices.Equal(got, tc.want) {
			t.Errorf("keeps in hours %v..%v = %v, want %v", tc.from, tc.to, got, tc.want)
		}
	}
}

func TestCheckStepExtensions(t *testing.T) {
	const end = 9 * day
	for _, tc := range []struct {
		name  string
		setup func(f *fixture) (prev, s0, s1 *Snapshot)
		want  []string
	}{{
		name: "deleted within a retention of its hold's end",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			f.saved(1, 0, 1)
			f.m.AddHold(HoldOp{Trace: 1, Window: win(1, 1), OK: true, Until: at(3 * day), UntilMax: at(3 * day)})
			o := f.trace(1, 3*day, 1)
			return nil, snap(8*day, o), snap(end)
		},
		want: []string{InvKeep},
	}, {
		name: "deleted a retention after its hold's end",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			f.saved(1, 0, 1)
			f.m.AddHold(HoldOp{Trace: 1, Window: win(1, 1), OK: true, Until: at(day), UntilMax: at(day)})
			return nil, snap(8*day, f.trace(1, day, 1)), snap(end)
		},
	}, {
		name: "still held after a step that began past its end",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			f.saved(1, 0, 1)
			f.m.AddHold(HoldOp{Trace: 1, Window: win(1, 1), OK: true, Until: at(3 * day), UntilMax: at(3 * day)})
			o := f.trace(1, 0, 1)
			o.Held = true
			return nil, snap(4*day, o), snap(5*day, o)
		},
		want: []string{InvHoldEnd},
	}, {
		name: "a lowered keep lets the second newest go",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			f.saved(1, 0, 1)
			f.saved(2, 0, 1)
			f.m.AddKeep(KeepChange{Keep: 1, Window: win(1, 1), OK: true})
			a, b := f.trace(1, 0, 1), f.trace(2, 0, 1)
			return snap(7*day, a, b), snap(8*day, a, b), snap(end, b)
		},
	}, {
		name: "a raised keep keeps the third newest",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			objs := []Object{}
			for l := 1; l <= 3; l++ {
				f.saved(l, 0, 1)
				objs = append(objs, f.trace(l, 0, 1))
			}
			f.m.AddKeep(KeepChange{Keep: 3, Window: win(7*day+1, 7*day+1), OK: true})
			return snap(7*day, objs...), snap(8*day, objs...), snap(end, objs[1:]...)
		},
		want: []string{InvKeep},
	}, {
		name: "a raise that failed keeps nothing certain",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			objs := []Object{}
			for l := 1; l <= 3; l++ {
				f.saved(l, 0, 1)
				objs = append(objs, f.trace(l, 0, 1))
			}
			f.m.AddKeep(KeepChange{Keep: 3, Window: win(7*day+1, 7*day+1)})
			return snap(7*day, objs...), snap(8*day, objs...), snap(end, objs[1:]...)
		},
	}, {
		name: "an old imported keeper deleted by the next step",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			f.m.AddWrite(Write{Op: 1, Trace: 1, Kind: WriteImport, Window: win(7*day+1, 7*day+1), OK: true, Gen: 1, Names: []traces.TLID{1}})
			o := f.trace(1, 1, 1)
			return snap(7 * day), snap(8*day, o), snap(end)
		},
		want: []string{InvKeep},
	}, {
		name: "an old imported trace with newer ones deleted",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			f.saved(2, 0, 1)
			f.saved(3, 0, 1)
			f.m.AddWrite(Write{Op: 1, Trace: 1, Kind: WriteImport, Window: win(7*day+1, 7*day+1), OK: true, Gen: 1, Names: []traces.TLID{1}})
			b, c := f.trace(2, 0, 1), f.trace(3, 0, 1)
			return snap(7*day, b, c), snap(8*day, f.trace(1, 1, 1), b, c), snap(end, b, c)
		},
	}, {
		name: "a young import deleted before its timestamp's retention",
		setup: func(f *fixture) (*Snapshot, *Snapshot, *Snapshot) {
			f.saved(2, 0, 1)
			f.saved(3, 0, 1)
			// t1's timestamp is hour 1: kept until day 7 and an hour.
			f.m.AddWrite(Write{Op: 1, Trace: 1, Kind: WriteImport, Window: win(2*day, 2*day), OK: true, Gen: 1, Names: []traces.TLID{1}})
			b, c := f.trace(2, 0, 1), f.trace(3, 0, 1)
			o := f.trace(1, 0, 1) // a customTime older than the import gave
			return snap(5*day, b, c, o), snap(6*day, b, c, o), snap(7*day, b, c)
		},
		want: []string{InvKeep},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(3)
			prev, s0, s1 := tc.setup(f)
			if got := invariants(f.m.CheckStep(prev, s0, s1)); !slices.Equal(got, tc.want) {
				t.Errorf("violations %v, want %v", got, tc.want)
			}
		})
	}
}

func TestCheckFinalHoldEnds(t *testing.T) {
	f := newFixture(3)
	f.m.EndLag = 12 * time.Hour
	for l := 1; l <= 3; l++ {
		f.saved(l, 0, 1)
	}
	f.m.AddHold(HoldOp{Trace: 1, Window: win(1, 1), OK: true, Until: at(3 * day), UntilMax: at(3 * day)})
	o := f.trace(1, 3*day, 1)
	o.Held = true
	s := snap(40*day, o, f.trace(2, 30*day, 1), f.trace(3, 30*day, 1))
	if got := invariants(f.m.CheckFinal(s)); !slices.Equal(got, []string{InvExpire, InvHoldEnd}) {
		t.Errorf("violations %v, want [%s %s]", got, InvExpire, InvHoldEnd)
	}
}
