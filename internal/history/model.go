package history

import (
	"bytes"
	"slices"
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
	WriteImport                   // a trace recorded elsewhere, customTime its own timestamp
)

// String names the kind for reports.
func (k WriteKind) String() string {
	return [...]string{"save", "resave", "replace", "layer", "import"}[k]
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
	// A hold's end: with Until set, the hold ends at a moment in
	// [Until, UntilMax] (a duration's end depends on when the service read
	// its clock); with NoEnd, it has none; with neither, a new hold has none
	// and a repeated one keeps the end it had.
	Until, UntilMax time.Time
	NoEnd           bool
}

// ends reports whether the hold call gives the hold an end of its own.
func (h HoldOp) ends() bool { return !h.Release && !h.Until.IsZero() }

// KeepChange is one finished call that set a canvas's own keep-N.
type KeepChange struct {
	Op     int // the number of the call in the history, for reports
	Canvas int
	Keep   int // 0: none, the default (Model.Keep) applies
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
	Keep      int // the server's keep-N, a canvas's unless it sets its own
	// Slack is how close a trace's timestamp may be to a toplevel's
	// deletion for liveness to be ambiguous (clocks differ).
	Slack time.Duration
	// EndLag bounds how long after a hold's end GC releases it: a GC
	// interval (a pass runs at every clock step of at most that).
	EndLag time.Duration

	keeps   []KeepChange
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

// AddKeep records a finished change of a canvas's keep-N.
func (m *Model) AddKeep(k KeepChange) { m.keeps = append(m.keeps, k) }

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

// LastCall is when the last recorded call ended, or GC at the latest
// ended a hold a call set, whichever is later.
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
			if h.ends() {
				up(Window{End: h.UntilMax.Add(m.EndLag)}) // GC releases it then
			}
		}
	}
	for _, f := range m.forgets {
		up(f.Window)
	}
	for _, k := range m.keeps {
		up(k.Window)
	}
	for _, d := range m.dels {
		up(d.Window)
	}
	return t
}
