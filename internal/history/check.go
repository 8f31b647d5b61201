package history

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// The invariants a Violation names.
const (
	// InvKeep: a trace that had to be kept was deleted by a clock step.
	InvKeep = "keep"
	// InvKeepLayer: a layer that reads of such a trace merge was deleted
	// while the trace stayed.
	InvKeepLayer = "keep-layer"
	// InvVanished: an acknowledged trace or layer disappeared although no
	// clock step (hence no lifecycle sweep) and no canvas deletion ran.
	InvVanished = "vanished"
	// InvReadable: an acknowledged trace's object is there but its index
	// rows are gone, so it can no longer be read or listed.
	InvReadable = "readable"
	// InvCanvasDeleted: an object of a trace written before a canvas
	// deletion that finished survived it.
	InvCanvasDeleted = "canvas-deleted"
	// InvExpire: after quiescence, an object outlived its retention
	// although it was neither a possible keeper nor possibly held.
	InvExpire = "expire"
	// InvExpireLayer: after quiescence, a layer object of no trace (its
	// trace gone, or written for an older generation) outlived retention.
	InvExpireLayer = "expire-layer"
	// InvHoldLeak: after quiescence, an object is held although its trace
	// was certainly released (or never held).
	InvHoldLeak = "hold-leak"
	// InvReleased: at a moment nothing runs, a trace object is held
	// although an acknowledged release answered after every hold call of
	// it had ended (or it was never held): the release's answer was not
	// true when it was given.
	InvReleased = "released"
	// InvHoldEnd: an object is still held after a clock step (with its GC
	// passes) that began after every hold of its trace had certainly ended.
	InvHoldEnd = "hold-end"
	// InvIndexRow: after quiescence, an index row outlived its object.
	InvIndexRow = "index-row"
	// InvRead: after quiescence, reading an acknowledged trace through the
	// service failed or missed a layer, or a listed trace whose object is
	// gone did not heal on read.
	InvRead = "read"
)

// Violation is one definite breach of the promise found by a check.
type Violation struct {
	Invariant string
	Label     int    // the trace involved (0: none)
	Key       string // the object involved
	Detail    string
}

// Headline is the violation's first clause, for a one-line summary.
func (v Violation) Headline() string {
	s := v.String()
	if i := strings.Index(s, "; #"); i > 0 {
		s = s[:i]
	}
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

// String renders the violation in full for a report.
func (v Violation) String() string {
	s := "[" + v.Invariant + "]"
	if v.Label != 0 {
		s += fmt.Sprintf(" t%d", v.Label)
	}
	if v.Key != "" {
		s += " " + v.Key
	}
	return s + ": " + v.Detail
}

func (m *Model) labels() []int { return slices.Sorted(maps.Keys(m.traces)) }

// describe names a trace for a report.
func (m *Model) describe(label int) string {
	t := m.traces[label]
	return fmt.Sprintf("t%d (canvas %c, id %s, timestamp %s)", label, 'A'+t.Canvas, t.ID, stamp(t.TS))
}

func stamp(t time.Time) string { return t.UTC().Format("01-02 15:04:05") }

// CheckSnapshot checks what holds at any moment nothing runs: every
// committed trace, and every trace whose object is at a generation an
// acknowledged write returned, has its index rows (else it cannot be
// read); no trace object is held once an acknowledged release (or no hold
// at all) certainly left it unheld; and no object of a trace written only
// before a finished canvas deletion is left. Call it on every snapshot, before Observe.
func (m *Model) CheckSnapshot(s *Snapshot) []Violation {
	var vs []Violation
	for _, l := range m.labels() {
		t := m.traces[l]
		key := m.key(l)
		o, ok := s.Objects[key]
		if ok && (m.Committed(l, s.At) || m.ackedGen(l, o.Gen, s.At)) {
			if _, indexed := s.Rows[key]; !indexed {
				vs = append(vs, Violation{InvReadable, l, key, fmt.Sprintf(
					"%s: its object (generation %d, customTime %s) is there but its index rows are gone at %s, so reads answer 404 and lists omit it%s",
					m.describe(l), o.Gen, stamp(o.CustomTime), stamp(s.At), m.writeHistory(l))})
			}
		}
		if ok && o.Held && m.DefinitelyUnheld(l, s.At) {
			vs = append(vs, Violation{InvReleased, l, key, fmt.Sprintf(
				"%s: its object (generation %d) is held at %s although the trace was certainly released or never held%s",
				m.describe(l), o.Gen, stamp(s.At), m.holdHistory(l))})
		}
		for _, d := range m.dels {
			if !d.OK || d.Canvas != t.Canvas || d.End.After(s.At) || !m.writtenOnlyBefore(l, d.Start) {
				continue
			}
			var left []string
			if ok {
				left = append(left, key)
			}
			s.prepare()
			for _, lo := range s.layers[key] {
				left = append(left, lo.Key)
			}
			if len(left) > 0 {
				vs = append(vs, Violation{InvCanvasDeleted, l, left[0], fmt.Sprintf(
					"%s: written only before canvas deletion #%d (%s..%s) finished, yet %d of its objects remain at %s",
					m.describe(l), d.Op, stamp(d.Start), stamp(d.End), len(left), stamp(s.At))})
			}
		}
	}
	return vs
}

// writtenOnlyBefore reports whether the trace had writes and every one of
// them (whatever its outcome) ended before t.
func (m *Model) writtenOnlyBefore(label int, t time.Time) bool {
	ws := m.writes[label]
	if len(ws) == 0 {
		return false
	}
	for _, w := range ws {
		if !w.End.Before(t) {
			return false
		}
	}
	return true
}

// writeHistory lists a trace's writes for a report.
func (m *Model) writeHistory(label int) string {
	var b strings.Builder
	for _, w := range m.writes[label] {
		out := "failed"
		if w.OK {
			out = fmt.Sprintf("ok gen %d", w.Gen)
			if w.Kind == WriteLayer {
				out = fmt.Sprintf("ok layer %d of gen %d", w.N, w.Gen)
			}
		}
		fmt.Fprintf(&b, "; #%d %s %s..%s %s", w.Op, w.Kind, stamp(w.Start), stamp(w.End), out)
	}
	if len(m.absent[label]) > 0 {
		fmt.Fprintf(&b, "; object seen absent at")
		for _, a := range m.absent[label] {
			fmt.Fprintf(&b, " %s", stamp(a))
		}
	}
	return b.String()
}

// CheckBetween checks a snapshot taken after client calls but no clock
// step since the previous one, prev (nil if none): nothing but a canvas deletion deletes a
// trace object, and nothing deletes an acknowledged layer of the
// generation its trace object still has, so a committed trace (or such a
// layer) that is absent vanished. Call it before Observe(cur).
func (m *Model) CheckBetween(prev, cur *Snapshot) []Violation {
	var vs []Violation
	for _, l := range m.labels() {
		if !m.Committed(l, cur.At) {
			continue
		}
		t := m.traces[l]
		key := m.key(l)
		o, ok := cur.Objects[key]
		if !ok {
			vs = append(vs, Violation{InvVanished, l, key, fmt.Sprintf(
				"%s: the committed trace object is gone at %s although no clock step or canvas deletion ran%s",
				m.describe(l), stamp(cur.At), m.writeHistory(l))})
			continue
		}
		for _, w := range m.writes[l] {
			if !w.OK || w.Kind != WriteLayer || w.Gen != o.Gen || w.End.After(cur.At) {
				continue
			}
			lk := traces.LayerKey(m.Canvases[t.Canvas], t.ID, w.N)
			if prev != nil && !w.End.After(prev.At) {
				if lp, ok := prev.Objects[lk]; !ok || lp.Base != w.Gen {
					continue // already gone then: reported by the check of that snapshot
				}
			}
			if lo, ok := cur.Objects[lk]; !ok || lo.Base != w.Gen {
				vs = append(vs, Violation{InvVanished, l, lk, fmt.Sprintf(
					"%s: layer %d acknowledged by #%d for generation %d (still the trace's) is gone at %s although no clock step ran",
					m.describe(l), w.N, w.Op, w.Gen, stamp(cur.At))})
			}
		}
	}
	return vs
}

// protection says why a trace present in s0 had to survive a clock step
// that ended at end: young (its customTime, or the one its first save or
// import certainly gave it, is less than Retention before end), held, its
// hold certainly lasted until a moment less than Retention before end (GC
// ends it with a fresh retention, as a release), a keeper of a live
// toplevel both in prev (the snapshot after the previous step, so GC has
// had a pass to learn of it) and in s0, under every keep-N possibly in
// force when the step began, or imported since prev as such a keeper (see
// importKeeper). keptOrHeld is set for all but the first (its layers must
// survive too). It returns "" if nothing protected it.
func (m *Model) protection(label int, prev, s0 *Snapshot, end time.Time) (why string, keptOrHeld bool) {
	o := s0.Objects[m.key(label)]
	t := m.traces[label]
	var whys []string
	if o.CustomTime.Add(m.Retention).After(end) {
		whys = append(whys, fmt.Sprintf("its customTime %s was younger than the retention at %s", stamp(o.CustomTime), stamp(end)))
	}
	if ct, w, ok := m.firstCustomTime(label, s0.At); ok && ct.After(o.CustomTime) && ct.Add(m.Retention).After(end) {
		whys = append(whys, fmt.Sprintf("#%d (%s) gave it customTime %s or later, younger than the retention at %s", w.Op, w.Kind, stamp(ct), stamp(end)))
	}
	if op, until, ok := m.heldSince(label, s0.At); ok {
		switch {
		case until.IsZero():
			whys = append(whys, fmt.Sprintf("it was held (hold #%d, no release since, no end)", op))
			keptOrHeld = true
		case until.After(s0.At):
			whys = append(whys, fmt.Sprintf("it was held (hold #%d, no release since, ending no earlier than %s)", op, stamp(until)))
			keptOrHeld = true
		default:
			h := m.holdOp(label, op)
			from := until
			if h.Start.After(from) {
				from = h.Start
			}
			if from = from.Truncate(time.Second); from.Add(m.Retention).After(end) {
				whys = append(whys, fmt.Sprintf("it was held (hold #%d, no release since) until %s or later, and a hold's end gives a fresh retention from then", op, stamp(from)))
				keptOrHeld = true
			}
		}
	}
	if prev != nil {
		// The keep-N is the smallest possibly in force when the step began
		// (a change that may have failed counts both ways): an
		// acknowledged raise before it renewed, or left marked due for
		// the step's first GC pass, every trace it made a keeper, however
		// it ranked in prev; a lowering lets them go.
		keep := m.minKeep(t.Canvas, s0.At, s0.At)
		before := m.keeperOf(label, prev, keep)
		for _, x := range m.keeperOf(label, s0, keep) {
			if slices.Contains(before, x) {
				whys = append(whys, fmt.Sprintf("it was among the newest %d of live toplevel %d (%s; %d newer trace objects touch it; %s)",
					keep, x, m.how(label, x, s0), s0.newer(t.Canvas, x, t.ID), m.liveness(t.Canvas, x, s0.At)))
				keptOrHeld = true
			}
		}
	}
	for _, k := range m.importKeeper(label, prev, s0) {
		whys = append(whys, k)
		keptOrHeld = true
	}
	return strings.Join(whys, "; "), keptOrHeld
}

// holdOp returns the trace's hold call numbered op.
func (m *Model) holdOp(label, op int) HoldOp {
	for _, h := range m.holds[label] {
		if h.Op == op {
			return h
		}
	}
	return HoldOp{}
}

// firstCustomTime is the customTime the trace's first write certainly gave
// its object, when that write was an acknowledged save or import, no other
// write of the trace began before it ended, and the object has stayed
// since (committed): a save's is at least its start, an import's its
// timestamp (never later than its start), in whole seconds.
func (m *Model) firstCustomTime(label int, at time.Time) (time.Time, Write, bool) {
	ws := m.writes[label]
	t := m.traces[label]
	for _, w := range ws {
		if !w.OK || (w.Kind != WriteSave && w.Kind != WriteImport) || w.End.After(at) ||
			m.absentIn(label, w.End, at) || m.deletedSince(t.Canvas, w.Start, at) {
			continue
		}
		first := true
		for _, o := range ws {
			if o.Op != w.Op && o.Start.Before(w.End) {
				first = false
			}
		}
		if !first {
			continue
		}
		ct := w.Start
		if w.Kind == WriteImport && t.TS.Before(ct) {
			ct = t.TS
		}
		return ct.Truncate(time.Second), w, true
	}
	return time.Time{}, Write{}, false
}

// importKeeper says, for a trace imported since prev (nil: since the
// start) by an acknowledged import whose generation its object in s0
// still has, of which toplevels it was certainly a keeper since the
// import: toplevels the import names that are certainly live in s0, with
// fewer than the smallest keep-N possibly in force since the import began
// of newer traces possibly touching them at any moment since prev (those
// in prev or in s0 that possibly touch them, and those a write since prev
// named them for). An import renews such keepers before it answers when
// its customTime is older than GC's renewal threshold (and GC's first pass
// of the step renews younger ones), so they must survive the step.
func (m *Model) importKeeper(label int, prev, s0 *Snapshot) []string {
	t := m.traces[label]
	o := s0.Objects[m.key(label)]
	var out []string
	for _, w := range m.writes[label] {
		if w.Kind != WriteImport || !w.OK || w.End.After(s0.At) || w.Gen != o.Gen || (prev != nil && !w.Start.After(prev.At)) {
			continue
		}
		keep := m.minKeep(t.Canvas, w.Start, s0.At)
		for _, x := range w.Names {
			if !m.DefinitelyLive(t.Canvas, x, s0.At) {
				continue
			}
			newer := map[traces.TraceID]bool{}
			s0.prepare()
			for _, id := range s0.ranked[t.Canvas][x] {
				newer[id] = true
			}
			if prev != nil {
				prev.prepare()
				for _, id := range prev.ranked[t.Canvas][x] {
					newer[id] = true
				}
			}
			for l, ws := range m.writes {
				if m.traces[l].Canvas != t.Canvas {
					continue
				}
				for _, v := range ws {
					if !v.Start.After(s0.At) && (prev == nil || !v.End.Before(prev.At)) && slices.Contains(v.Names, x) {
						newer[m.traces[l].ID] = true
					}
				}
			}
			n := 0
			for id := range newer {
				if bytes.Compare(id[:], t.ID[:]) > 0 {
					n++
				}
			}
			if n < keep {
				out = append(out, fmt.Sprintf("import #%d (%s..%s) made it one of the newest %d of live toplevel %d (%d newer traces may have touched it since; %s)",
					w.Op, stamp(w.Start), stamp(w.End), keep, x, n, m.liveness(t.Canvas, x, s0.At)))
			}
		}
	}
	return out
}

// liveness explains why a toplevel is definitely live.
func (m *Model) liveness(canvas int, x traces.TLID, at time.Time) string {
	var fs []string
	for _, f := range m.forgets {
		if f.Canvas == canvas && f.TLID == x && !f.Start.After(at) {
			fs = append(fs, fmt.Sprintf("#%d", f.Op))
		}
	}
	if len(fs) == 0 {
		return "never reported deleted"
	}
	return "reported deleted by " + strings.Join(fs, ",") + " and revived by a later trace"
}

// CheckStep checks one clock step: s0 was taken just before it, s1 just
// after, prev after the step before (nil for the first). The lifecycle rule
// deletes only objects whose customTime is at least Retention old; GC, run
// before every sweep, renews every keeper the index knows of, and held
// objects are never deleted. So a committed trace object present in s0 and
// gone in s1 must not have been protected (see protection); and while its
// object stays, the layers reads certainly merge must stay too if the
// trace was kept or held (else only if they were young themselves). And
// the step's GC passes end every hold whose end has come: no object of a
// trace whose holds had all certainly ended before the step is held after
// it.
func (m *Model) CheckStep(prev, s0, s1 *Snapshot) []Violation {
	vs := m.checkHoldEnds(s0.At, s1, fmt.Sprintf("after the clock step %s..%s, whose GC passes end every hold whose end has come", stamp(s0.At), stamp(s1.At)))
	for _, l := range m.labels() {
		key := m.key(l)
		o0, ok := s0.Objects[key]
		if !ok || !m.Committed(l, s0.At) {
			continue
		}
		why, kept := m.protection(l, prev, s0, s1.At)
		o1, ok := s1.Objects[key]
		if !ok {
			if why != "" {
				vs = append(vs, Violation{InvKeep, l, key, fmt.Sprintf(
					"%s was deleted during the clock step %s..%s, but %s%s%s",
					m.describe(l), stamp(s0.At), stamp(s1.At), why, m.writeHistory(l), m.holdCalls(l))})
			}
			continue
		}
		if o1.Gen != o0.Gen {
			continue
		}
		for _, lo := range m.definiteLayers(l, s0) {
			if l1, ok := s1.Objects[lo.Key]; ok && l1.Gen == lo.Gen {
				continue
			}
			young := lo.CustomTime.Add(m.Retention).After(s1.At)
			if !kept && !young {
				continue
			}
			reason := why
			if !kept {
				reason = fmt.Sprintf("the layer's customTime %s was younger than the retention", stamp(lo.CustomTime))
			}
			vs = append(vs, Violation{InvKeepLayer, l, lo.Key, fmt.Sprintf(
				"layer %d of %s (reads merge it: generation %d, an acknowledged layer at least as high) was deleted during the clock step %s..%s while the trace stayed, but %s%s%s",
				lo.Layer, m.describe(l), lo.Base, stamp(s0.At), stamp(s1.At), reason, m.writeHistory(l), m.holdCalls(l))})
		}
	}
	return vs
}

// CheckFinal checks the state after quiescence: every call retried until
// it succeeded, notifications drained, and the clock moved past several
// retention periods with GC running. By then no customTime any call set is
// younger than Retention, so every object left must be possibly held or
// possibly a keeper; no object is held unless its trace may be; and every
// index row has its object. Possibly a keeper is judged generously: a
// toplevel not certainly dead, any toplevel the object or a layer of its
// generation names, and only committed traces that certainly touch it as
// competitors.
func (m *Model) CheckFinal(s *Snapshot) []Violation {
	var vs []Violation
	s.prepare()
	keys := slices.Sorted(maps.Keys(s.Objects))
	for _, k := range keys {
		o := s.Objects[k]
		l, ok := m.Label(o)
		if !ok || m.lastTouch(l).Add(m.Retention).After(s.At) || !m.unheldAtEnd(l, s.At) {
			continue
		}
		if o.Kind == traces.KindTrace {
			if !m.possibleKeeper(o, s) {
				vs = append(vs, Violation{InvExpire, l, k, fmt.Sprintf(
					"%s outlived its retention (customTime %s at %s; last call about it ended %s) although it is not held and no toplevel keeps it: %s%s",
					m.describe(l), stamp(o.CustomTime), stamp(s.At), stamp(m.lastTouch(l)), m.whyNotKept(o, s), m.writeHistory(l))})
			}
			continue
		}
		if owner, ok := s.Objects[o.Owner]; ok && owner.Gen == o.Base {
			continue // judged with its trace
		}
		vs = append(vs, Violation{InvExpireLayer, l, k, fmt.Sprintf(
			"layer %d (for generation %d) of %s outlived its retention (customTime %s at %s) although its trace object %s and it is not held",
			o.Layer, o.Base, m.describe(l), stamp(o.CustomTime), stamp(s.At), m.ownerState(o, s))})
	}
	heldLeak := map[int][]string{}
	for _, k := range keys {
		o := s.Objects[k]
		if !o.Held {
			continue
		}
		if l, ok := m.Label(o); ok && m.DefinitelyUnheld(l, s.At) {
			heldLeak[l] = append(heldLeak[l], k)
		}
	}
	for _, l := range slices.Sorted(maps.Keys(heldLeak)) {
		ks := heldLeak[l]
		vs = append(vs, Violation{InvHoldLeak, l, ks[0], fmt.Sprintf(
			"%s: %d object(s) are still held at %s although the trace was certainly released or never held (%s)%s",
			m.describe(l), len(ks), stamp(s.At), strings.Join(ks, ", "), m.holdHistory(l))})
	}
	vs = append(vs, m.checkHoldEnds(s.At.Add(-m.EndLag), s, "after quiescence")...)
	for _, k := range slices.Sorted(maps.Keys(s.Rows)) {
		gen := s.Rows[k]
		if o, ok := s.Objects[k]; ok && o.Gen >= gen {
			continue
		}
		l := m.byKey[k]
		vs = append(vs, Violation{InvIndexRow, l, k, fmt.Sprintf(
			"index rows for generation %d outlived the object (gone or older) after every notification was applied and GC ran for weeks%s",
			gen, m.writeHistory(l))})
	}
	return vs
}

func (m *Model) ownerState(o Object, s *Snapshot) string {
	owner, ok := s.Objects[o.Owner]
	if !ok {
		return "is gone"
	}
	return fmt.Sprintf("is at generation %d", owner.Gen)
}

// unheldAtEnd reports whether the trace is certainly not held at the end
// of a history at at: certainly released or never held, or every hold it
// may have certainly ended more than EndLag before at (GC released it).
func (m *Model) unheldAtEnd(label int, at time.Time) bool {
	if m.DefinitelyUnheld(label, at) {
		return true
	}
	e, ok := m.EndedBy(label, at)
	return ok && e.Add(m.EndLag).Before(at)
}

// checkHoldEnds reports every object of s held although all holds of its
// trace certainly ended before by (and none was certainly released or
// never placed: hold-leak reports those).
func (m *Model) checkHoldEnds(by time.Time, s *Snapshot, when string) []Violation {
	held := map[int][]string{}
	for _, k := range slices.Sorted(maps.Keys(s.Objects)) {
		o := s.Objects[k]
		if !o.Held {
			continue
		}
		l, ok := m.Label(o)
		if !ok || m.DefinitelyUnheld(l, s.At) {
			continue
		}
		if e, ok := m.EndedBy(l, s.At); ok && !e.IsZero() && e.Before(by) {
			held[l] = append(held[l], k)
		}
	}
	var vs []Violation
	for _, l := range slices.Sorted(maps.Keys(held)) {
		ks := held[l]
		e, _ := m.EndedBy(l, s.At)
		vs = append(vs, Violation{InvHoldEnd, l, ks[0], fmt.Sprintf(
			"%s: %d object(s) are still held at %s %s, although every hold the trace may have had ended by %s (%s)%s",
			m.describe(l), len(ks), stamp(s.At), when, stamp(e), strings.Join(ks, ", "), m.holdHistory(l))})
	}
	return vs
}

// keepWindow is how long before a final snapshot a keep-N possibly in
// force still matters: a keeper renewed under it lasts a retention, and the
// rule runs at every clock step (at most a day apart in quiescence).
func (m *Model) keepWindow(at time.Time) time.Time { return at.Add(-m.Retention - 24*time.Hour) }

// possibleKeeper reports whether some toplevel might keep o: it is not
// certainly dead, o or a layer of its generation names it, and fewer than
// the largest keep-N possibly in force lately committed traces newer than
// o certainly touch it.
func (m *Model) possibleKeeper(o Object, s *Snapshot) bool {
	keep := m.maxKeep(o.Canvas, m.keepWindow(s.At), s.At)
	for _, x := range s.possibleNames(o) {
		if !m.DefinitelyDead(o.Canvas, x, s.At) && len(m.definiteNewer(o, x, s)) < keep {
			return true
		}
	}
	return false
}

// definiteNewer returns the committed traces newer than o that certainly
// touch x in s.
func (m *Model) definiteNewer(o Object, x traces.TLID, s *Snapshot) []int {
	var out []int
	for _, p := range s.Objects {
		if p.Kind != traces.KindTrace || p.Canvas != o.Canvas || bytes.Compare(p.Trace[:], o.Trace[:]) <= 0 {
			continue
		}
		lp, ok := m.Label(p)
		if ok && m.Committed(lp, s.At) && slices.Contains(m.definiteNames(lp, s), x) {
			out = append(out, lp)
		}
	}
	slices.Sort(out)
	return out
}

// whyNotKept explains, toplevel by toplevel, why no toplevel keeps o.
func (m *Model) whyNotKept(o Object, s *Snapshot) string {
	var parts []string
	for _, x := range s.possibleNames(o) {
		if m.DefinitelyDead(o.Canvas, x, s.At) {
			parts = append(parts, fmt.Sprintf("toplevel %d is dead (%s)", x, m.deaths(o.Canvas, x)))
			continue
		}
		var newer []string
		for _, l := range m.definiteNewer(o, x, s) {
			newer = append(newer, fmt.Sprintf("t%d (%s)", l, m.how(l, x, s)))
		}
		parts = append(parts, fmt.Sprintf("toplevel %d has newer committed traces %s (keep-N at most %d)", x, strings.Join(newer, ", "),
			m.maxKeep(o.Canvas, m.keepWindow(s.At), s.At)))
	}
	return strings.Join(parts, "; ")
}

func (m *Model) deaths(canvas int, x traces.TLID) string {
	var fs []string
	for _, f := range m.forgets {
		if f.OK && f.Canvas == canvas && f.TLID == x {
			fs = append(fs, fmt.Sprintf("deleted by #%d at %s", f.Op, stamp(f.Start)))
		}
	}
	return strings.Join(fs, ", ") + "; no trace with a later timestamp named it"
}

// holdCalls lists a trace's hold and release calls for a report.
func (m *Model) holdCalls(label int) string {
	var b strings.Builder
	for _, h := range m.holds[label] {
		kind, out := "hold", "failed"
		if h.Release {
			kind = "release"
		}
		if h.OK {
			out = "ok"
		}
		switch {
		case h.ends():
			kind += fmt.Sprintf(" until %s", stamp(h.Until))
		case h.NoEnd:
			kind += " with no end"
		}
		fmt.Fprintf(&b, "; #%d %s %s..%s %s", h.Op, kind, stamp(h.Start), stamp(h.End), out)
	}
	return b.String()
}

func (m *Model) holdHistory(label int) string {
	var b strings.Builder
	b.WriteString(m.holdCalls(label))
	for _, w := range m.writes[label] {
		if w.Kind == WriteLayer {
			fmt.Fprintf(&b, "; #%d layer %s..%s ok=%v", w.Op, stamp(w.Start), stamp(w.End), w.OK)
		}
	}
	return b.String()
}

// DefiniteLayers returns the layer objects of a trace that reads certainly
// merge (for the final read check).
func (m *Model) DefiniteLayers(label int, s *Snapshot) []Object { return m.definiteLayers(label, s) }

// Key returns the object key of a registered trace.
func (m *Model) Key(label int) string { return m.key(label) }

// Labels returns the registered traces' labels in order.
func (m *Model) Labels() []int { return m.labels() }
