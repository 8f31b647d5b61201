package history

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// opKind is what a history operation does.
type opKind int

const (
	opSave         opKind = iota // a new trace
	opResave                     // the same trace document again (an executor's late retry)
	opReplace                    // PUT, with or without If-Match
	opLayer                      // add function results
	opHold                       //
	opRelease                    //
	opForget                     // the editor deleted a toplevel
	opDeleteCanvas               // delete the canvas and wait for the job
	opGC                         // a GC pass alongside the requests, maybe killed midway
	opRead                       // read a trace
	opList                       // list a toplevel's newest traces
	opAdvance                    // move the clock (alone in its round)
	opImport                     // a new trace recorded elsewhere, imported with its old timestamp
	opKeep                       // set a canvas's own keep-N
)

var opNames = [...]string{"save", "resave", "replace", "layer", "hold", "release", "forget", "delete-canvas", "gc", "read", "list", "advance", "import", "keep"}

func (k opKind) String() string { return opNames[k] }

// op is one operation of a history, fully decided by the generator so that
// a seed always gives the same operations (only their interleaving and the
// trace IDs vary from run to run).
type op struct {
	kind    opKind
	canvas  int
	label   int           // the trace (for a save, the new trace's label)
	root    traces.TLID   // save, replace
	tlids   []traces.TLID // save, replace, layer
	results []traces.TLID // the tlid of each function result (save, replace, layer)
	expr    uint64        // exprID of the first result; results are numbered on
	lag     time.Duration // save, import: the trace's timestamp is this far before the clock
	ifMatch bool          // replace: read the generation first and send it
	tlid    traces.TLID   // forget, list
	until   time.Duration // hold: it ends this long after the call (0: no end given)
	holdFor bool          // hold: the end is given as a duration, not a time
	noEnd   bool          // hold: explicitly endless
	keep    int           // keep: the canvas's keep-N (0: back to the default)
	advance time.Duration
	kill    int // gc: cancelled after this many customTime PATCHes (0: not)
	retries int // how often the client retries a failed call at once
	fault   string
	faultN  int
}

// round is operations started together; a clock advance is alone in its round.
type round []op

type history []round

func (h history) ops() int {
	n := 0
	for _, r := range h {
		n += len(r)
	}
	return n
}

// The toplevels of every canvas: handlers 1-6 are roots, 7-9 functions
// named in tlids, 10-12 functions that only function results name, 13 a
// handler only imported traces run (so old imports are often its keepers).
const (
	roots        = 6
	functions    = 9
	importedRoot = 13
	allTLIDs     = 13
)

// masks name generator features that can be turned off (-history.mask),
// to look past a bug already found for the next one.
var masks = map[string]string{
	"results": "function results of documents name only toplevels the document lists",
	"lag":     "no trace is timestamped in the past",
	"faults":  "no injected faults",
	"late":    "the relay delays no notification",
	"layers":  "no layers",
	"holds":   "no holds",
	"forget":  "no toplevel deletions",
	"gc":      "no GC passes besides the clock's",
	"replace": "no replaces",
	"resave":  "no resaves",
	"until":   "no hold has an end",
	"import":  "no imports",
	"keep":    "no canvas changes its keep-N",
}

// generate builds a history of n rounds over canvases canvases, without
// the features masked.
func generate(seed uint64, n, canvases int, masked map[string]bool) history {
	g := &gen{rng: rand.New(rand.NewPCG(seed, 0x415f)), canvases: canvases, labels: make([][]int, canvases), expr: 1, masked: masked}
	var h history
	for range n {
		h = append(h, g.round())
		g.commit()
	}
	return h
}

type gen struct {
	rng       *rand.Rand
	canvases  int
	labels    [][]int // per canvas, labels saved in earlier rounds
	fresh     [][2]int
	next      int
	expr      uint64
	deletions int
	masked    map[string]bool
}

func (g *gen) commit() {
	for _, f := range g.fresh {
		g.labels[f[0]] = append(g.labels[f[0]], f[1])
	}
	g.fresh = nil
}

type weighted struct {
	k opKind
	w float64
}

var weights = []weighted{
	{opSave, 30}, {opResave, 4}, {opReplace, 8}, {opLayer, 12}, {opHold, 7}, {opRelease, 5},
	{opForget, 3}, {opDeleteCanvas, 0.6}, {opGC, 6}, {opRead, 5}, {opList, 3}, {opImport, 5}, {opKeep, 2},
}

func (g *gen) round() round {
	if g.rng.Float64() < 0.25 {
		return round{g.advance()}
	}
	k := 1 + g.rng.IntN(4)
	var r round
	for range k {
		r = append(r, g.op())
	}
	return r
}

func (g *gen) advance() op {
	var d time.Duration
	switch p := g.rng.Float64(); {
	case p < 0.4:
		d = time.Hour + time.Duration(g.rng.Int64N(int64(11*time.Hour)))
	case p < 0.8:
		d = 12*time.Hour + time.Duration(g.rng.Int64N(int64(36*time.Hour)))
	default:
		d = 48*time.Hour + time.Duration(g.rng.Int64N(int64(48*time.Hour)))
	}
	return op{kind: opAdvance, advance: d.Truncate(time.Minute)}
}

func (g *gen) pick() opKind {
	total := 0.0
	for _, w := range weights {
		total += w.w
	}
	x := g.rng.Float64() * total
	for _, w := range weights {
		if x < w.w {
			return w.k
		}
		x -= w.w
	}
	return opSave
}

// target picks a trace of canvas c saved in an earlier round: mostly one of
// the latest few, so operations collide; with late, as often one of the
// oldest half (an executor's retry that comes after the trace expired).
func (g *gen) target(c int, late bool) (int, bool) {
	ls := g.labels[c]
	if len(ls) == 0 {
		return 0, false
	}
	if late && g.rng.IntN(2) == 0 {
		ls = ls[:(len(ls)+1)/2]
	} else if g.rng.Float64() < 0.6 {
		ls = ls[max(0, len(ls)-6):]
	}
	return ls[g.rng.IntN(len(ls))], true
}

func (g *gen) tlid(lo, hi int) traces.TLID { return traces.TLID(lo + g.rng.IntN(hi-lo+1)) }

// doc fills root, tlids and results as a trace document would name them.
func (g *gen) doc(o *op) {
	o.root = g.tlid(1, roots)
	o.tlids = []traces.TLID{o.root}
	for range g.rng.IntN(3) {
		o.tlids = append(o.tlids, g.tlid(1, functions))
	}
	slices.Sort(o.tlids)
	o.tlids = slices.Compact(o.tlids)
	for range g.rng.IntN(4) {
		if g.rng.Float64() < 0.6 || g.masked["results"] {
			o.results = append(o.results, o.tlids[g.rng.IntN(len(o.tlids))])
		} else {
			o.results = append(o.results, g.tlid(roots+1, importedRoot-1))
		}
	}
	g.numberResults(o)
}

func (g *gen) numberResults(o *op) {
	o.expr = g.expr
	g.expr += uint64(len(o.results)) + 1
}

func (g *gen) op() op {
	c := g.rng.IntN(g.canvases)
	o := op{kind: g.pick(), canvas: c}
	for o.kind == opLayer && g.masked["layers"] || (o.kind == opHold || o.kind == opRelease) && g.masked["holds"] ||
		o.kind == opForget && g.masked["forget"] || o.kind == opGC && g.masked["gc"] ||
		o.kind == opReplace && g.masked["replace"] || o.kind == opResave && g.masked["resave"] ||
		o.kind == opImport && g.masked["import"] || o.kind == opKeep && g.masked["keep"] {
		o.kind = g.pick()
	}
	switch o.kind {
	case opResave, opReplace, opLayer, opHold, opRelease, opRead:
		l, ok := g.target(c, o.kind == opResave)
		if !ok {
			o.kind = opSave
			break
		}
		o.label = l
	case opDeleteCanvas:
		if g.deletions > 0 {
			o.kind = opSave // at most one per history: it is rare and wipes a canvas
		}
		g.deletions++
	}
	switch o.kind {
	case opSave, opImport:
		g.next++
		o.label = g.next
		g.fresh = append(g.fresh, [2]int{c, o.label})
		g.doc(&o)
		if o.kind == opImport && g.rng.IntN(3) == 0 {
			o.root = importedRoot
			o.tlids = append(o.tlids, importedRoot)
			slices.Sort(o.tlids)
		}
		switch p := g.rng.Float64(); {
		case o.kind == opImport && p < 0.5:
			// Younger than the retention: kept until it runs out.
			o.lag = time.Hour + time.Duration(g.rng.Int64N(int64(6*24*time.Hour)))
		case o.kind == opImport:
			// Older: gone at the rule's next run unless a keeper.
			o.lag = 7*24*time.Hour + time.Duration(g.rng.Int64N(int64(14*24*time.Hour)))
		case p < 0.7 || g.masked["lag"]:
		case p < 0.9:
			o.lag = time.Duration(g.rng.Int64N(int64(6 * time.Hour)))
		default:
			o.lag = 6*time.Hour + time.Duration(g.rng.Int64N(int64(66*time.Hour)))
		}
		o.lag = o.lag.Truncate(time.Second)
		o.retries = g.rng.IntN(3)
	case opResave:
		o.retries = g.rng.IntN(2)
	case opReplace:
		g.doc(&o)
		o.ifMatch = g.rng.IntN(2) == 0
		o.retries = g.rng.IntN(2)
	case opLayer:
		for range 1 + g.rng.IntN(2) {
			if g.rng.Float64() < 0.6 {
				o.results = append(o.results, g.tlid(1, functions))
			} else {
				o.results = append(o.results, g.tlid(roots+1, importedRoot-1))
			}
		}
		if g.rng.IntN(3) == 0 {
			o.tlids = []traces.TLID{g.tlid(1, allTLIDs)}
		}
		g.numberResults(&o)
		o.retries = g.rng.IntN(2)
	case opHold:
		o.retries = g.rng.IntN(3)
		switch p := g.rng.Float64(); {
		case g.masked["until"]:
		case p < 0.4:
			// A short end: a few clock steps ahead.
			o.until = (2*time.Hour + time.Duration(g.rng.Int64N(int64(4*24*time.Hour)))).Truncate(time.Minute)
			o.holdFor = g.rng.IntN(2) == 0
		case p < 0.55:
			o.noEnd = true
		}
	case opKeep:
		o.keep = []int{1, 2, 3, 5, 10, 0}[g.rng.IntN(6)]
		o.retries = g.rng.IntN(2)
	case opRelease, opForget:
		o.retries = g.rng.IntN(2)
	case opGC:
		if g.rng.IntN(2) == 0 {
			o.kill = 1 + g.rng.IntN(6)
		}
	}
	if o.kind == opForget || o.kind == opList {
		o.tlid = g.tlid(1, allTLIDs)
	}
	if g.rng.Float64() < 0.3 && !g.masked["faults"] {
		g.fault(&o)
	}
	return o
}

// faults lists, per operation kind, the faults that can hit it.
var faults = map[opKind][]string{
	opSave:         {"gcs:upload", "lost:Create", "db:PutTrace:before", "db:PutTrace:after"},
	opImport:       {"gcs:upload", "lost:Create", "db:PutTrace:before", "db:PutTrace:after", "gcs:metadata"},
	opKeep:         {"db:SetCanvasKeep:before", "db:SetCanvasKeep:after", "gcs:metadata"},
	opResave:       {"gcs:upload", "lost:Create", "db:PutTrace:before", "db:PutTrace:after", "gcs:metadata"},
	opReplace:      {"gcs:upload", "lost:Replace", "db:BeginOp:after", "db:ReplaceTrace:before", "db:ReplaceTrace:after", "gcs:read", "gcs:delete"},
	opLayer:        {"gcs:upload", "lost:Create", "db:ReserveLayer:after", "db:CommitLayer:before", "db:CommitLayer:after", "db:EndOp:before", "gcs:metadata", "lost:SetTemporaryHold"},
	opHold:         {"gcs:metadata", "lost:SetTemporaryHold", "db:BeginHold:before", "db:BeginHold:after", "db:EndOp:before"},
	opRelease:      {"gcs:metadata", "lost:SetTemporaryHold", "db:BeginRelease:before", "db:BeginRelease:after", "db:EndRelease:before", "db:EndRelease:after"},
	opForget:       {"db:ForgetToplevel:before", "db:ForgetToplevel:after"},
	opDeleteCanvas: {"gcs:delete", "gcs:list", "lost:Delete"},
	opGC:           {"gcs:metadata", "lost:SetCustomTime"},
	opRead:         {"gcs:read"},
	opList:         {"gcs:read"},
}

func (g *gen) fault(o *op) {
	fs := faults[o.kind]
	if len(fs) == 0 {
		return
	}
	o.fault = fs[g.rng.IntN(len(fs))]
	o.faultN = 1
	if strings.HasPrefix(o.fault, "gcs:") {
		o.faultN = 1 + g.rng.IntN(3)
	}
}

// String renders an operation for a report.
func (o op) String() string {
	var b strings.Builder
	b.WriteString(o.kind.String())
	if o.kind == opAdvance {
		fmt.Fprintf(&b, " %s", days(o.advance))
		return b.String()
	}
	if o.kind != opGC {
		fmt.Fprintf(&b, " canvas %c", 'A'+o.canvas)
	}
	switch o.kind {
	case opSave, opResave, opReplace, opLayer, opHold, opRelease, opRead, opImport:
		fmt.Fprintf(&b, " t%d", o.label)
	}
	switch o.kind {
	case opSave, opReplace, opImport:
		fmt.Fprintf(&b, " root %d tlids %v results %v", o.root, o.tlids, o.results)
	case opLayer:
		fmt.Fprintf(&b, " tlids %v results %v", o.tlids, o.results)
	case opForget, opList:
		fmt.Fprintf(&b, " toplevel %d", o.tlid)
	case opKeep:
		if o.keep == 0 {
			b.WriteString(" to the default")
		} else {
			fmt.Fprintf(&b, " %d", o.keep)
		}
	}
	switch {
	case o.until > 0 && o.holdFor:
		fmt.Fprintf(&b, " for %s", days(o.until))
	case o.until > 0:
		fmt.Fprintf(&b, " until now+%s", days(o.until))
	case o.noEnd:
		b.WriteString(" with no end")
	}
	if o.lag > 0 {
		fmt.Fprintf(&b, " timestamp now-%s", days(o.lag))
	}
	if o.ifMatch {
		b.WriteString(" with If-Match")
	}
	if o.kill > 0 {
		fmt.Fprintf(&b, " killed after %d PATCHes", o.kill)
	}
	if o.retries > 0 {
		fmt.Fprintf(&b, " (up to %d retries)", o.retries)
	}
	if o.fault != "" {
		fmt.Fprintf(&b, " [fault %s x%d]", o.fault, o.faultN)
	}
	return b.String()
}

// days renders a duration with a day count.
func days(d time.Duration) string {
	if d >= 24*time.Hour {
		n := d / (24 * time.Hour)
		rest := d - n*24*time.Hour
		if rest == 0 {
			return fmt.Sprintf("%dd", n)
		}
		return fmt.Sprintf("%dd%s", n, rest)
	}
	return d.String()
}
