package history

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// Window is when an operation ran, on the emulator's clock: whatever it
// did took effect between Start and End, if at all.
type Window struct{ Start, End time.Time }

// overlaps reports whether two windows share a moment (touching counts, to
// stay on the safe side).
func (w Window) overlaps(o Window) bool { return !w.End.Before(o.Start) && !o.End.Before(w.Start) }

// WriteKind says what a Write was.
type WriteKind int

// The kinds of Write.
const (
	WriteSave    WriteKind = iota // a new trace (POST)
	WriteResave                   // the same document again (a client's late retry)
	WriteReplace                  // PUT
	WriteLayer                    // function results added
)

func (k WriteKind) String() string {
	return [...]string{"save", "resave", "replace", "layer"}[k]
}

// Write is one finished call that may have written a trace or a layer.
type Write struct {
	Op    int // the number of the call in the history, for reports
	Trace int // the trace's label
	Kind  WriteKind
	Window
	OK bool // acknowledged; a failure may or may not have taken effect
	// Gen is what an acknowledged call returned: the trace object's
	// generation, or for a layer the generation it was added to.
	Gen int64
	N   int // a layer's number
	// Names are the toplevels the written document or layer names (root,
	// tlids and the tlid of each function result).
	Names []traces.TLID
}

// HoldOp is one finished hold or release call.
type HoldOp struct {
	Op      int // the number of the call in the history, for reports
	Trace   int
	Release bool
	Window
	OK bool
}

// Forget is one finished "toplevel deleted" call.
type Forget struct {
	Op     int // the number of the call in the history, for reports
	Canvas int
	TLID   traces.TLID
	Window
	OK bool
}

// CanvasDeletion is one finished canvas deletion (the job awaited).
type CanvasDeletion struct {
	Op     int // the number of the call in the history, for reports
	Canvas int
	Window
	OK bool
}

// Trace is what the model knows of a trace from the moment its first save
// was attempted: its canvas, ID and timestamp (the ID's time).
type Trace struct {
	Label, Canvas int
	ID            traces.TraceID
	TS            time.Time
}

// Object is one object of a bucket snapshot, with what its content names.
type Object struct {
	Key        string
	Kind       traces.KeyKind // KindTrace or KindLayer
	Canvas     int
	Trace      traces.TraceID
	Owner      string // the key of the trace object it belongs to (its own for a trace)
	Layer      int    // layer number
	Gen        int64
	CustomTime time.Time
	Held       bool
	// Names are the toplevels the content names: for a trace its root,
	// tlids and each function result's tlid; for a layer its tlids and
	// each result's tlid.
	Names []traces.TLID
	// Listed are, for a trace, its root and tlids: the names a save
	// indexes (the others come only from its function results).
	Listed []traces.TLID
	Base   int64    // a layer's baseGeneration
	Exprs  []uint64 // a layer's results' exprIDs
}

// Snapshot is the bucket (and the index's trace rows) at one moment when
// nothing ran: every client call had returned and the notification
// consumer had applied what the relay had let through.
type Snapshot struct {
	At      time.Time
	Objects map[string]Object
	// Rows maps the key of every indexed trace to the generation its index
	// rows describe.
	Rows map[string]int64

	layers map[string][]Object                      // trace key → its layer objects
	ranked map[int]map[traces.TLID][]traces.TraceID // canvas → tlid → trace IDs possibly touching it
}

func (s *Snapshot) prepare() {
	if s.layers != nil {
		return
	}
	s.layers = map[string][]Object{}
	for _, o := range s.Objects {
		if o.Kind == traces.KindLayer {
			s.layers[o.Owner] = append(s.layers[o.Owner], o)
		}
	}
	s.ranked = map[int]map[traces.TLID][]traces.TraceID{}
	for _, o := range s.Objects {
		if o.Kind != traces.KindTrace {
			continue
		}
		m := s.ranked[o.Canvas]
		if m == nil {
			m = map[traces.TLID][]traces.TraceID{}
			s.ranked[o.Canvas] = m
		}
		for _, x := range s.possibleNames(o) {
			m[x] = append(m[x], o.Trace)
		}
	}
}

// possibleNames is every toplevel a trace object might be taken to touch:
// its content and every layer written for its generation, whether or not a
// read merges it (reads merge an unacknowledged layer once a later one is
// counted).
func (s *Snapshot) possibleNames(o Object) []traces.TLID {
	names := slices.Clone(o.Names)
	for _, l := range s.layers[o.Key] {
		if l.Base == o.Gen {
			names = append(names, l.Names...)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// newer counts the trace objects of canvas newer than id (by trace ID,
// which is time order) that possibly touch x.
func (s *Snapshot) newer(canvas int, x traces.TLID, id traces.TraceID) int {
	s.prepare()
	n := 0
	for _, other := range s.ranked[canvas][x] {
		if bytes.Compare(other[:], id[:]) > 0 {
			n++
		}
	}
	return n
}

// Model is the reference model: what the history did (every call with its
// window and outcome) and what the snapshots showed. Its judgements are in
// check.go. It is not safe for concurrent use.
type Model struct {
	Canvases  []traces.CanvasID
	Retention time.Duration
	Keep      int
	// Slack is how close a trace's timestamp may be to a toplevel's
	// deletion for liveness to be ambiguous (clocks differ).
	Slack time.Duration

	traces  map[int]*Trace
	byKey   map[string]int
	writes  map[int][]Write
	holds   map[int][]HoldOp
	forgets []Forget
	dels    []CanvasDeletion
	absent  map[int][]time.Time // when each trace object was seen absent
}

// NewModel returns an empty model.
func NewModel(canvases []traces.CanvasID, retention time.Duration, keep int, slack time.Duration) *Model {
	return &Model{
		Canvases: canvases, Retention: retention, Keep: keep, Slack: slack,
		traces: map[int]*Trace{}, byKey: map[string]int{}, writes: map[int][]Write{},
		holds: map[int][]HoldOp{}, absent: map[int][]time.Time{},
	}
}

// AddTrace registers a trace before its first save is attempted.
func (m *Model) AddTrace(t Trace) {
	m.traces[t.Label] = &t
	m.byKey[traces.TraceKey(m.Canvases[t.Canvas], t.ID)] = t.Label
}

// TraceOf returns a registered trace.
func (m *Model) TraceOf(label int) (Trace, bool) {
	t, ok := m.traces[label]
	if !ok {
		return Trace{}, false
	}
	return *t, true
}

// Label returns the label of the trace a trace or layer object belongs to.
func (m *Model) Label(o Object) (int, bool) {
	l, ok := m.byKey[o.Owner]
	return l, ok
}

func (m *Model) key(label int) string {
	t := m.traces[label]
	return traces.TraceKey(m.Canvases[t.Canvas], t.ID)
}

// AddWrite records a finished write.
func (m *Model) AddWrite(w Write) { m.writes[w.Trace] = append(m.writes[w.Trace], w) }

// AddHold records a finished hold or release.
func (m *Model) AddHold(h HoldOp) { m.holds[h.Trace] = append(m.holds[h.Trace], h) }

// AddForget records a finished forget.
func (m *Model) AddForget(f Forget) { m.forgets = append(m.forgets, f) }

// AddDeletion records a finished canvas deletion.
func (m *Model) AddDeletion(d CanvasDeletion) { m.dels = append(m.dels, d) }

// Observe records which trace objects s shows absent. Call it after the
// checks of s.
func (m *Model) Observe(s *Snapshot) {
	for l := range m.traces {
		if _, ok := s.Objects[m.key(l)]; !ok {
			m.absent[l] = append(m.absent[l], s.At)
		}
	}
}

// LastCall is when the last recorded call ended.
func (m *Model) LastCall() time.Time {
	var t time.Time
	up := func(w Window) {
		if w.End.After(t) {
			t = w.End
		}
	}
	for _, ws := range m.writes {
		for _, w := range ws {
			up(w.Window)
		}
	}
	for _, hs := range m.holds {
		for _, h := range hs {
			up(h.Window)
		}
	}
	for _, f := range m.forgets {
		up(f.Window)
	}
	for _, d := range m.dels {
		up(d.Window)
	}
	return t
}

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
// reading: an acknowledged hold ended by at, and every release call that
// started by at ended before that hold began.
func (m *Model) DefinitelyHeld(label int, at time.Time) bool {
	for _, h := range m.holds[label] {
		if h.Release || !h.OK || h.End.After(at) {
			continue
		}
		ok := true
		for _, r := range m.holds[label] {
			if r.Release && !r.Start.After(at) && !r.End.Before(h.Start) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
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

// keeperOf returns the toplevels the trace is certainly a keeper of in s:
// the trace is committed, certainly touches x, x is certainly live, and
// fewer than Keep trace objects newer than it possibly touch x.
func (m *Model) keeperOf(label int, s *Snapshot) []traces.TLID {
	if !m.Committed(label, s.At) {
		return nil
	}
	t := m.traces[label]
	var out []traces.TLID
	for _, x := range m.definiteNames(label, s) {
		if m.DefinitelyLive(t.Canvas, x, s.At) && s.newer(t.Canvas, x, t.ID) < m.Keep {
			out = append(out, x)
		}
	}
	return out
}

// lastTouch is when the last call about the trace (any write, hold or
// release, whatever its outcome) ended: none of them sets a customTime
// after that.
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
	}
	return t
}
