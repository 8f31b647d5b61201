package history

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// The model's judgements: what certainly or possibly holds at a moment,
// under every reading of the history (each failed call taken or not, each
// overlap ordered either way).

// absentIn reports whether the trace object was seen absent in (from, to].
func (m *Model) absentIn(label int, from, to time.Time) bool {
	for _, a := range m.absent[label] {
		if a.After(from) && !a.After(to) {
			return true
		}
	}
	return false
}

// deletedSince reports whether a deletion of canvas ran at any moment in
// [from, to].
func (m *Model) deletedSince(canvas int, from, to time.Time) bool {
	for _, d := range m.dels {
		if d.Canvas == canvas && !d.End.Before(from) && !d.Start.After(to) {
			return true
		}
	}
	return false
}

// Committed reports whether, at at, the trace is one tracegw acknowledged
// and still has: an acknowledged save, resave or replace ended by at, after
// which the trace object was never seen absent and no deletion of its
// canvas ran (overlapping the write counts). Its object may since have been
// overwritten by a replace that failed: an overwrite leaves no gap, and the
// object at the key is the trace.
func (m *Model) Committed(label int, at time.Time) bool {
	t := m.traces[label]
	for _, w := range m.writes[label] {
		if !w.OK || w.Kind == WriteLayer || w.End.After(at) {
			continue
		}
		if m.absentIn(label, w.End, at) || m.deletedSince(t.Canvas, w.Start, at) {
			continue
		}
		return true
	}
	return false
}

// ackedGen reports whether an acknowledged save, resave or replace returned
// generation gen, ended by at, and the object was not seen absent since.
func (m *Model) ackedGen(label int, gen int64, at time.Time) bool {
	for _, w := range m.writes[label] {
		if w.OK && w.Kind != WriteLayer && w.Gen == gen && !w.End.After(at) && !m.absentIn(label, w.End, at) {
			return true
		}
	}
	return false
}

// maxLayer is the highest number of an acknowledged layer added to
// generation gen by at (0: none). An acknowledged layer n means the index
// counts at least n layers for that generation, so reads merge every layer
// object 1..n written for it.
func (m *Model) maxLayer(label int, gen int64, at time.Time) int {
	n := 0
	for _, w := range m.writes[label] {
		if w.OK && w.Kind == WriteLayer && w.Gen == gen && !w.End.After(at) {
			n = max(n, w.N)
		}
	}
	return n
}

// definiteLayers are the layer objects in s that reads of the trace
// certainly merge: written for the trace object's generation, numbered at
// most the highest acknowledged layer of it.
func (m *Model) definiteLayers(label int, s *Snapshot) []Object {
	s.prepare()
	o, ok := s.Objects[m.key(label)]
	if !ok {
		return nil
	}
	n := m.maxLayer(label, o.Gen, s.At)
	var out []Object
	for _, l := range s.layers[o.Key] {
		if l.Base == o.Gen && l.Layer <= n {
			out = append(out, l)
		}
	}
	slices.SortFunc(out, func(a, b Object) int { return a.Layer - b.Layer })
	return out
}

// how says how a trace certainly touches x in s, for reports.
func (m *Model) how(label int, x traces.TLID, s *Snapshot) string {
	o := s.Objects[m.key(label)]
	var ways []string
	switch {
	case slices.Contains(o.Listed, x):
		ways = append(ways, "its document lists it")
	case slices.Contains(o.Names, x):
		ways = append(ways, "only a function result of its document names it")
	}
	for _, l := range m.definiteLayers(label, s) {
		if slices.Contains(l.Names, x) {
			ways = append(ways, fmt.Sprintf("layer %d names it", l.Layer))
		}
	}
	return strings.Join(ways, ", ")
}

// definiteNames are the toplevels the trace certainly touches in s: its
// object's content and its definite layers.
func (m *Model) definiteNames(label int, s *Snapshot) []traces.TLID {
	o, ok := s.Objects[m.key(label)]
	if !ok {
		return nil
	}
	names := slices.Clone(o.Names)
	for _, l := range m.definiteLayers(label, s) {
		names = append(names, l.Names...)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

func (m *Model) ts(label int) time.Time { return m.traces[label].TS }

// DefinitelyLive reports whether toplevel x of canvas is live at at under
// every reading of the history: never reported deleted (by a call that
// started by at, whatever its outcome), or named by an acknowledged write of
// a trace whose timestamp is more than Slack after the end of every such
// deletion call.
func (m *Model) DefinitelyLive(canvas int, x traces.TLID, at time.Time) bool {
	var last time.Time
	any := false
	for _, f := range m.forgets {
		if f.Canvas == canvas && f.TLID == x && !f.Start.After(at) {
			any = true
			if f.End.After(last) {
				last = f.End
			}
		}
	}
	if !any {
		return true
	}
	after := last.Add(m.Slack)
	for l, ws := range m.writes {
		if m.traces[l].Canvas != canvas || !m.ts(l).After(after) {
			continue
		}
		for _, w := range ws {
			if w.OK && !w.End.After(at) && slices.Contains(w.Names, x) {
				return true
			}
		}
	}
	return false
}

// DefinitelyDead reports whether toplevel x of canvas is dead at at under
// every reading: an acknowledged deletion call ended by at, no write call of
// any outcome named x for a trace whose timestamp is at most Slack before
// that call began, and no canvas deletion ran since (it drops the record of
// the deletion).
func (m *Model) DefinitelyDead(canvas int, x traces.TLID, at time.Time) bool {
	for _, f := range m.forgets {
		if !f.OK || f.Canvas != canvas || f.TLID != x || f.End.After(at) {
			continue
		}
		if m.deletedSince(canvas, f.Start, at) || m.possibleRevival(canvas, x, f.Start.Add(-m.Slack), at) {
			continue
		}
		return true
	}
	return false
}

func (m *Model) possibleRevival(canvas int, x traces.TLID, from, at time.Time) bool {
	for l, ws := range m.writes {
		if m.traces[l].Canvas != canvas || m.ts(l).Before(from) {
			continue
		}
		for _, w := range ws {
			if !w.Start.After(at) && slices.Contains(w.Names, x) {
				return true
			}
		}
	}
	return false
}

// DefinitelyHeld reports whether the trace is held at at under every
// reading: an acknowledged hold ended by at, every release call that
// started by at ended before that hold began, and every end the hold may
// have (see holdEnd) is after at.
func (m *Model) DefinitelyHeld(label int, at time.Time) bool {
	_, _, ok := m.heldBy(label, at)
	return ok
}

// heldBy is DefinitelyHeld returning the hold call and the earliest end
// the hold may have (zero: none). A hold applies to the object it was
// placed on: one followed by a canvas deletion (which releases and
// deletes) or by the object being seen absent does not hold whatever was
// saved under the name since.
func (m *Model) heldBy(label int, at time.Time) (op int, end time.Time, ok bool) {
	op, end, ok = m.heldSince(label, at)
	if ok && !end.IsZero() && !end.After(at) {
		return 0, time.Time{}, false
	}
	return op, end, ok
}

// heldSince finds an acknowledged hold, ended by at, after whose start no
// release call began by at, with no canvas deletion and no absence of the
// object since: the trace was held from that hold's end on, until the
// earliest end the hold may have (end; zero: none), or at least until at.
// Of several, it returns the one whose end is latest.
func (m *Model) heldSince(label int, at time.Time) (op int, end time.Time, ok bool) {
	t := m.traces[label]
	for _, h := range m.holds[label] {
		if h.Release || !h.OK || h.End.After(at) || m.deletedSince(t.Canvas, h.Start, at) || m.absentIn(label, h.End, at) {
			continue
		}
		released := false
		for _, r := range m.holds[label] {
			if r.Release && !r.Start.After(at) && !r.End.Before(h.Start) {
				released = true
			}
		}
		if released {
			continue
		}
		e := m.holdEnd(label, h, at)
		if !ok || e.IsZero() || (!end.IsZero() && e.After(end)) {
			op, end, ok = h.Op, e, true
		}
	}
	return op, end, ok
}

// holdEnd is the earliest end (zero: none) the hold h placed may have at
// at, under every reading: the end h gives, or one a hold call that may
// come after it gives (whatever its outcome). A call that gives no end
// keeps the one the hold had: that of any hold call that may precede it
// with no acknowledged release certainly in between.
func (m *Model) holdEnd(label int, h HoldOp, at time.Time) time.Time {
	var end time.Time
	earlier := func(e time.Time) {
		if !e.IsZero() && (end.IsZero() || e.Before(end)) {
			end = e
		}
	}
	for _, g := range m.holds[label] {
		if g.Release || g.Start.After(at) || (g.Op != h.Op && g.End.Before(h.Start)) {
			continue
		}
		switch {
		case g.ends():
			earlier(g.Until)
		case !g.NoEnd:
			for _, k := range m.holds[label] {
				if k.ends() && k.Op != g.Op && !k.Start.After(g.End) && !m.releasedBetween(label, k, g) {
					earlier(k.Until)
				}
			}
		}
	}
	return end
}

// releasedBetween reports whether an acknowledged release certainly came
// after hold call k and before hold call g.
func (m *Model) releasedBetween(label int, k, g HoldOp) bool {
	for _, r := range m.holds[label] {
		if r.Release && r.OK && r.Start.After(k.End) && r.End.Before(g.Start) {
			return true
		}
	}
	return false
}

// EndedBy reports whether, under every reading, every hold the calls
// started by at may have left in place has an end, and the latest such end:
// GC releases the trace by then (plus EndLag) at the latest. A hold call
// counts unless an acknowledged release, or an acknowledged hold that sets
// an end (or none) of its own, began after it ended; a hold call that gives
// no end may have placed a new, endless hold. With no hold call at all it
// reports true and the zero time.
func (m *Model) EndedBy(label int, at time.Time) (time.Time, bool) {
	var last time.Time
	for _, g := range m.holds[label] {
		if g.Release || g.Start.After(at) {
			continue
		}
		superseded := false
		for _, k := range m.holds[label] {
			if k.OK && !k.End.After(at) && k.Start.After(g.End) && (k.Release || k.ends() || k.NoEnd) {
				superseded = true
			}
		}
		switch {
		case superseded:
		case !g.ends():
			return time.Time{}, false
		case g.UntilMax.After(last):
			last = g.UntilMax
		}
	}
	return last, true
}

// DefinitelyUnheld reports whether the trace is not held at at under every
// reading: no hold call was ever made, or an acknowledged release ended by
// at began after every hold call that started by at had ended.
func (m *Model) DefinitelyUnheld(label int, at time.Time) bool {
	held := false
	for _, h := range m.holds[label] {
		if !h.Release && !h.Start.After(at) {
			held = true
		}
	}
	if !held {
		return true
	}
	for _, r := range m.holds[label] {
		if !r.Release || !r.OK || r.End.After(at) {
			continue
		}
		ok := true
		for _, h := range m.holds[label] {
			if !h.Release && !h.Start.After(at) && !h.End.Before(r.Start) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// keeperOf returns the toplevels the trace is certainly a keeper of in s
// under keep-N keep: the trace is committed, certainly touches x, x is
// certainly live, and fewer than keep trace objects newer than it possibly
// touch x.
func (m *Model) keeperOf(label int, s *Snapshot, keep int) []traces.TLID {
	if !m.Committed(label, s.At) {
		return nil
	}
	t := m.traces[label]
	var out []traces.TLID
	for _, x := range m.definiteNames(label, s) {
		if m.DefinitelyLive(t.Canvas, x, s.At) && s.newer(t.Canvas, x, t.ID) < keep {
			out = append(out, x)
		}
	}
	return out
}

// lastTouch is when the last call about the trace (any write, hold or
// release, whatever its outcome) ended, or GC at the latest ended a hold
// one of them set: none of them sets a customTime after that.
func (m *Model) lastTouch(label int) time.Time {
	var t time.Time
	for _, w := range m.writes[label] {
		if w.End.After(t) {
			t = w.End
		}
	}
	for _, h := range m.holds[label] {
		if h.End.After(t) {
			t = h.End
		}
		if e := h.UntilMax.Add(m.EndLag); h.ends() && e.After(t) {
			t = e
		}
	}
	return t
}

// keepsIn returns every keep-N possibly in force for canvas at some moment
// in [from, to], under every reading of its keep changes: take the
// acknowledged change ended by from that began last (else the default);
// the value at from is its own or that of a change (of any outcome) that
// may come after it, and changes begun by to add theirs. A canvas deletion
// (begun by to) drops the canvas's own keep: the default comes back.
func (m *Model) keepsIn(canvas int, from, to time.Time) []int {
	var anchor *KeepChange
	for i, k := range m.keeps {
		if k.Canvas == canvas && k.OK && !k.End.After(from) && (anchor == nil || k.Start.After(anchor.Start)) {
			anchor = &m.keeps[i]
		}
	}
	val := func(keep int) int {
		if keep == 0 {
			return m.Keep
		}
		return keep
	}
	var out []int
	if anchor == nil {
		out = append(out, m.Keep)
	} else {
		out = append(out, val(anchor.Keep))
	}
	for _, k := range m.keeps {
		if k.Canvas != canvas || k.Start.After(to) || (anchor != nil && k.End.Before(anchor.Start)) {
			continue
		}
		out = append(out, val(k.Keep))
	}
	for _, d := range m.dels {
		if d.Canvas == canvas && !d.Start.After(to) {
			out = append(out, m.Keep)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// minKeep is the smallest keep-N possibly in force for canvas in [from, to]:
// a trace ranked below it is a keeper under every reading.
func (m *Model) minKeep(canvas int, from, to time.Time) int {
	return m.keepsIn(canvas, from, to)[0]
}

// maxKeep is the largest keep-N possibly in force for canvas in [from, to].
func (m *Model) maxKeep(canvas int, from, to time.Time) int {
	ks := m.keepsIn(canvas, from, to)
	return ks[len(ks)-1]
}
