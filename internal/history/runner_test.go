package history

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/ttl"
)

// settings are what a run needs besides its history.
type settings struct {
	seed      uint64
	canvases  int
	keep      int
	slack     time.Duration
	quietDays int    // days the quiescence phase advances the clock
	noLate    bool   // the relay delays nothing
	dbURL     string // a database to empty and reuse ("": a fresh one per run)
}

// outcome is one executed operation.
type outcome struct {
	n          int // 1-based, in execution order
	round      int // 1-based; quiescence rounds continue the count
	op         op
	phase      string // "" or "quiescence"
	start, end time.Time
	err        error
	note       string
	gen        int64 // the generation a write returned
	layer      int   // the number of an added layer
	// A hold's end, for the model: within [until, untilMax].
	until, untilMax time.Time
}

func (o *outcome) String() string {
	res := "ok"
	if o.note != "" {
		res = "ok, " + o.note
	}
	if o.err != nil {
		res = "FAILED: " + o.err.Error()
		if len(res) > 160 {
			res = res[:160] + "…"
		}
	}
	return fmt.Sprintf("#%d %s → %s", o.n, o.op, res)
}

// result is what one run found.
type result struct {
	violations []Violation
	foundAt    []int // the round after which each violation was found
	outcomes   []*outcome
	elapsed    time.Duration
	stopped    bool // by the stop function
	rounds     int
}

func (r result) has(inv string) bool {
	return slices.ContainsFunc(r.violations, func(v Violation) bool { return v.Invariant == inv })
}

// runner executes one history against a fresh system and checks it.
type runner struct {
	t     testing.TB
	s     settings
	sys   *system
	m     *Model
	cache map[string]content
	prev  *Snapshot // after the last clock step
	last  *Snapshot
	dirty bool // calls ran since last was taken

	mu       sync.Mutex
	outcomes []*outcome
	n        int
	round    int
	phase    string

	seen    map[string]bool
	res     result
	stop    func(Violation) bool
	stopped bool
	saves   map[int]op // label → its save
	fatalf  func(format string, args ...any)
}

// canvasIDs are fixed: every run has its own bucket and database.
func canvasIDs(n int) []traces.CanvasID {
	out := make([]traces.CanvasID, n)
	for i := range out {
		var c traces.CanvasID
		c[0], c[6], c[8], c[15] = 0xca, 0x40, 0x80, byte(i+1)
		out[i] = c
	}
	return out
}

func policy(keep int) ttl.Policy {
	return ttl.Policy{Retention: 7 * ttl.Day, Margin: 3 * ttl.Day, Interval: 12 * time.Hour, Keep: keep}
}

// run executes h on a new system and returns what the checks found. With
// stop set, it ends as soon as a violation stop accepts is found.
func run(t testing.TB, s settings, h history, stop func(Violation) bool) result {
	t.Helper()
	start := time.Now()
	p := policy(s.keep)
	r := &runner{
		t: t, s: s, sys: newSystem(t, p, s.seed, s.dbURL),
		m:     NewModel(canvasIDs(s.canvases), p.Retention, p.Keep, s.slack),
		cache: map[string]content{}, seen: map[string]bool{}, saves: map[int]op{},
		fatalf: t.Fatalf, stop: stop,
	}
	r.m.EndLag = p.Interval
	if s.noLate {
		r.sys.relay.late = 0
	}
	ctx := t.Context()
	for _, rd := range h {
		if r.stopped {
			break
		}
		r.runRound(ctx, rd)
	}
	if !r.stopped {
		r.quiescence(ctx)
	}
	r.res.outcomes = r.outcomes
	r.res.stopped = r.stopped
	r.res.elapsed = time.Since(start)
	r.res.rounds = r.round
	return r.res
}

func (r *runner) report(vs []Violation) {
	for _, v := range vs {
		k := v.Invariant + "\x00" + fmt.Sprint(v.Label) + "\x00" + v.Key
		if r.seen[k] {
			continue
		}
		r.seen[k] = true
		r.res.violations = append(r.res.violations, v)
		if r.stop != nil && r.stop(v) {
			r.stopped = true
		}
		r.res.foundAt = append(r.res.foundAt, r.round)
	}
}

func (r *runner) now() time.Time { return r.sys.emu.E.Now() }

// runRound runs one round: a clock step alone, or its operations at once.
func (r *runner) runRound(ctx context.Context, rd round) {
	r.round++
	if len(rd) == 1 && rd[0].kind == opAdvance {
		r.step(ctx, rd[0])
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	now := r.now()
	var todo []*outcome
	for _, o := range rd {
		if o.kind == opSave || o.kind == opImport {
			if _, ok := r.m.TraceOf(o.label); !ok {
				ts := now.Add(-o.lag).UTC().Truncate(time.Millisecond)
				r.m.AddTrace(Trace{Label: o.label, Canvas: o.canvas, ID: traces.NewTraceID(ts), TS: ts})
				r.saves[o.label] = o
			}
		}
		if o.label != 0 && o.kind != opSave && o.kind != opImport {
			if _, ok := r.m.TraceOf(o.label); !ok {
				continue // its save is not in this (shrunk) history
			}
		}
		r.n++
		todo = append(todo, &outcome{n: r.n, round: r.round, op: o, phase: r.phase})
	}
	for _, oc := range todo {
		if oc.op.fault != "" {
			r.sys.arm(oc.op.fault, oc.op.faultN)
		}
	}
	r.dirty = true
	var wg sync.WaitGroup
	for _, oc := range todo {
		wg.Go(func() { r.exec(ctx, oc) })
	}
	wg.Wait()
	r.sys.clearFaults()
	for _, oc := range todo {
		r.record(oc)
	}
	r.outcomes = append(r.outcomes, todo...)
	// Let the relay pass what is due; the consumer applies it while the
	// next round runs.
	if err := waitUntil(ctx, func() bool { return r.sys.relay.received.Load() >= r.sys.emu.E.Published() }); err != nil {
		r.fatalf("relay: %v", err)
	}
	if err := r.sys.relay.release(ctx, false); err != nil {
		r.fatalf("%v", err)
	}
}

// definitive errors say the call changed nothing worth retrying.
func definitive(err error) bool {
	for _, e := range []error{traces.ErrNotFound, traces.ErrConflict, traces.ErrPreconditionFailed, traces.ErrHeld, traces.ErrInvalid, traces.ErrExhausted} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func isNotFound(err error) bool { return errors.Is(err, traces.ErrNotFound) }

// retry calls f until it succeeds, fails definitively, or ran 1+n times.
func retry(n int, f func() error) error {
	err := f()
	for i := 0; i < n && err != nil && !definitive(err); i++ {
		err = f()
	}
	return err
}

// doc builds the document an operation writes for trace tr.
func doc(o op, tr Trace) *traces.Trace {
	t := &traces.Trace{
		ID: tr.ID, RootTLID: o.root, TLIDs: slices.Clone(o.tlids), Timestamp: tr.TS,
		Input: []traces.InputVar{{Name: "request", Value: traces.Value{0xa2, 'h', 'i'}}},
	}
	t.FunctionResults = results(o)
	return t
}

func results(o op) []traces.FunctionResult {
	var out []traces.FunctionResult
	for i, x := range o.results {
		out = append(out, traces.FunctionResult{TLID: x, ExprID: o.expr + uint64(i), FnName: "fn", ArgHash: "a1", Value: traces.Value{0x01}})
	}
	return out
}

// names are the toplevels a document or layer of o names.
func names(o op) []traces.TLID {
	var ns []traces.TLID
	if o.kind != opLayer {
		ns = append(ns, o.root)
	}
	ns = append(ns, o.tlids...)
	ns = append(ns, o.results...)
	slices.Sort(ns)
	return slices.Compact(ns)
}
