package history

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/tracegw/tracegw/internal/holds"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
)

// exec runs one operation, with its immediate retries, and fills oc.
func (r *runner) exec(ctx context.Context, oc *outcome) {
	o := oc.op
	c := r.m.Canvases[o.canvas]
	var tr Trace
	if o.label != 0 {
		tr, _ = r.m.TraceOf(o.label)
		c = r.m.Canvases[tr.Canvas]
	}
	s := r.sys
	oc.start = r.now()
	defer func() { oc.end = r.now() }()
	switch o.kind {
	case opSave, opResave:
		spec := o
		if o.kind == opResave {
			spec = r.saves[o.label]
		}
		oc.err = retry(o.retries, func() error {
			res, err := s.save(ctx, c, doc(spec, tr))
			if err == nil {
				oc.gen, oc.note = res.Generation, fmt.Sprintf("generation %d", res.Generation)
				if !res.Created {
					oc.note += " (found stored)"
				}
			}
			return err
		})
	case opReplace:
		oc.err = retry(o.retries, func() error {
			var gen int64
			if o.ifMatch {
				rd, err := s.get(ctx, c, tr.ID)
				if err != nil {
					return err
				}
				gen = rd.Generation
			}
			res, err := s.replace(ctx, c, tr.ID, doc(o, tr), gen)
			if err == nil {
				oc.gen, oc.note = res.Generation, fmt.Sprintf("generation %d", res.Generation)
				if gen != 0 {
					oc.note += fmt.Sprintf(" (If-Match %d)", gen)
				}
			}
			return err
		})
	case opLayer:
		oc.err = retry(o.retries, func() error {
			res, err := s.addLayer(ctx, c, tr.ID, o.tlids, results(o))
			if err == nil {
				oc.gen, oc.layer = res.Generation, res.N
				oc.note = fmt.Sprintf("layer %d of generation %d", res.N, res.Generation)
			}
			return err
		})
	case opImport:
		oc.err = retry(o.retries, func() error {
			res, err := s.importTrace(ctx, c, doc(o, tr))
			if err == nil {
				oc.gen, oc.note = res.Generation, fmt.Sprintf("generation %d", res.Generation)
				if !res.Created {
					oc.note += " (found stored)"
				}
			}
			return err
		})
	case opHold:
		sp := holds.Spec{Reason: "history", NoEnd: o.noEnd}
		if o.until > 0 {
			// The end the model records: a time is exact, a duration
			// counts from when the service reads its clock.
			oc.until, oc.untilMax = oc.start.Add(o.until).Truncate(time.Second), oc.start.Add(o.until).Truncate(time.Second)
			if o.holdFor {
				sp.For = o.until
				oc.untilMax = time.Time{} // set when the call ends
			} else {
				sp.Until = oc.until
			}
		}
		oc.err = retry(o.retries, func() error { return s.hold(ctx, c, tr.ID, sp) })
		if o.until > 0 && o.holdFor {
			oc.untilMax = s.emu.E.Now().Add(o.until + time.Second)
		}
	case opKeep:
		oc.err = retry(o.retries, func() error {
			p, err := s.setKeep(ctx, c, o.keep)
			if err == nil {
				oc.note = fmt.Sprintf("keep %d", p.Keep)
				if p.RenewalPending {
					oc.note += ", renewal left to GC"
				}
			}
			return err
		})
	case opRelease:
		oc.err = retry(o.retries, func() error { return s.release(ctx, c, tr.ID) })
	case opForget:
		oc.err = retry(o.retries, func() error { return s.forget(ctx, c, o.tlid) })
	case opDeleteCanvas:
		oc.err = retry(o.retries, func() error { return s.deleteCanvas(ctx, c) })
	case opGC:
		oc.err = s.gcPass(ctx, o.kill)
	case opRead:
		rd, err := s.get(ctx, c, tr.ID)
		if oc.err = err; err == nil {
			oc.note = fmt.Sprintf("generation %d, %d layers, %d results", rd.Generation, rd.Record.Layers, len(rd.Trace.FunctionResults))
		}
	case opList:
		list, err := s.recent(ctx, c, o.tlid, 10)
		if oc.err = err; err == nil {
			oc.note = fmt.Sprintf("%d traces", len(list))
		}
	}
}

// record tells the model what a finished operation did.
func (r *runner) record(oc *outcome) {
	o := oc.op
	w := Window{Start: oc.start, End: oc.end}
	ok := oc.err == nil
	switch o.kind {
	case opSave, opResave, opReplace, opImport:
		kind, spec := WriteSave, o
		switch o.kind {
		case opResave:
			kind, spec = WriteResave, r.saves[o.label]
		case opReplace:
			kind = WriteReplace
		case opImport:
			kind = WriteImport
		}
		r.m.AddWrite(Write{Op: oc.n, Trace: o.label, Kind: kind, Window: w, OK: ok, Gen: oc.gen, Names: names(spec)})
	case opLayer:
		r.m.AddWrite(Write{Op: oc.n, Trace: o.label, Kind: WriteLayer, Window: w, OK: ok, Gen: oc.gen, N: oc.layer, Names: names(o)})
	case opHold, opRelease:
		r.m.AddHold(HoldOp{Op: oc.n, Trace: o.label, Release: o.kind == opRelease, Window: w, OK: ok,
			Until: oc.until, UntilMax: oc.untilMax, NoEnd: o.noEnd})
	case opKeep:
		r.m.AddKeep(KeepChange{Op: oc.n, Canvas: o.canvas, Keep: o.keep, Window: w, OK: ok})
	case opForget:
		r.m.AddForget(Forget{Op: oc.n, Canvas: o.canvas, TLID: o.tlid, Window: w, OK: ok})
	case opDeleteCanvas:
		r.m.AddDeletion(CanvasDeletion{Op: oc.n, Canvas: o.canvas, Window: w, OK: ok})
	}
}

// snap waits until nothing runs (faults off, notifications the relay let
// through applied) and snapshots the bucket and the index.
func (r *runner) snap(ctx context.Context) *Snapshot {
	r.sys.clearFaults()
	if err := r.sys.quiesce(ctx); err != nil {
		r.fatalf("quiesce: %v", err)
	}
	s, err := r.sys.snapshot(ctx, r.m, r.cache)
	if err != nil {
		r.fatalf("%v", err)
	}
	if watch := *flagWatch; watch != "" {
		if l, err := strconv.Atoi(strings.TrimPrefix(watch, "t")); err == nil && strings.HasPrefix(watch, "t") {
			tr, ok := r.m.TraceOf(l)
			if !ok {
				return s
			}
			watch = tr.ID.String()
		}
		for _, k := range slices.Sorted(maps.Keys(s.Objects)) {
			if strings.Contains(k, watch) {
				o := s.Objects[k]
				r.t.Logf("watch %s at %s: gen %d ct %s held %v base %d names %v", k, stamp(s.At), o.Gen, stamp(o.CustomTime), o.Held, o.Base, o.Names)
			}
		}
		for k, g := range s.Rows {
			if strings.Contains(k, watch) {
				r.t.Logf("watch %s at %s: index rows gen %d", k, stamp(s.At), g)
			}
		}
	}
	return s
}

// step runs one clock advance between two snapshots and checks it.
func (r *runner) step(ctx context.Context, o op) {
	r.n++
	oc := &outcome{n: r.n, round: r.round, op: o, phase: r.phase}
	s0 := r.last
	if r.dirty || s0 == nil {
		// Calls ran since the last snapshot: take and check a new one.
		s0 = r.snap(ctx)
		r.report(r.m.CheckBetween(r.last, s0))
		r.report(r.m.CheckSnapshot(s0))
		r.m.Observe(s0)
	}
	oc.start = r.now()
	sum, err := r.sys.emu.E.Advance(ctx, o.advance)
	oc.end = r.now()
	if err != nil {
		r.fatalf("advance %s: %v", o.advance, err)
	}
	oc.note = fmt.Sprintf("renewed %d, deleted %d, notifications applied %d (%d held back)",
		sum.Renewed, sum.Deleted, sum.NotificationsConsumed, r.sys.relay.held())
	var skipped, failed, gone int
	for _, p := range r.sys.takePasses() {
		skipped, failed, gone = skipped+p.Skipped, failed+p.Failed, gone+p.Gone
	}
	if skipped+failed+gone > 0 {
		oc.note += fmt.Sprintf("; GC skipped %d claimed canvases, %d keepers failed, %d gone", skipped, failed, gone)
	}
	s1 := r.snap(ctx)
	vs := r.m.CheckStep(r.prev, s0, s1)
	for i, v := range vs {
		if v.Invariant == InvKeep || v.Invariant == InvKeepLayer {
			vs[i].Detail += r.indexView(ctx, v, s0)
		}
	}
	r.report(vs)
	r.report(r.m.CheckSnapshot(s1))
	r.m.Observe(s1)
	r.prev, r.last, r.dirty = s1, s1, false
	r.outcomes = append(r.outcomes, oc)
}

// quietStep is the quiescence phase's clock step.
const quietStep = 24*time.Hour + 73*time.Second

// retriable are the operations a client retries until they succeed.
var retriable = map[opKind]bool{
	opSave: true, opResave: true, opReplace: true, opLayer: true, opHold: true,
	opRelease: true, opForget: true, opDeleteCanvas: true, opImport: true, opKeep: true,
}

// quiescence ends a history: faults off, every failed call retried until it
// succeeds (or fails for good), traces whose hold state is still ambiguous
// settled by repeating their last hold or release, every held-back
// notification delivered, then the clock moved quietDays days with GC, and
// the final state checked.
func (r *runner) quiescence(ctx context.Context) {
	r.phase = "quiescence"
	r.sys.clearFaults()
	r.runBatched(ctx, r.retries())
	r.runBatched(ctx, r.settlements())
	r.sys.relay.mu.Lock()
	r.sys.relay.late = 0
	r.sys.relay.mu.Unlock()
	if err := r.sys.deliver(ctx, true); err != nil {
		r.fatalf("deliver: %v", err)
	}
	// Steps of a day and a bit, after an odd first one: a customTime set
	// just before (by the retries above) then never expires exactly at a
	// step, where milliseconds of real time would decide the outcome.
	r.runRound(ctx, round{{kind: opAdvance, advance: 6*time.Hour + 17*time.Minute}})
	for range r.s.quietDays {
		if r.stopped {
			return
		}
		r.runRound(ctx, round{{kind: opAdvance, advance: quietStep}})
	}
	if r.last == nil || r.stopped {
		return
	}
	if r.last.At.Before(r.m.LastCall().Add(r.m.Retention + 24*time.Hour)) {
		r.fatalf("quiescence too short: final snapshot %s, last call %s", stamp(r.last.At), stamp(r.m.LastCall()))
	}
	vs := r.m.CheckFinal(r.last)
	for i, v := range vs {
		if v.Invariant == InvExpire {
			vs[i].Detail += r.indexView(ctx, v, r.last)
		}
	}
	r.report(vs)
	r.readChecks(ctx, r.last)
}

// retries are the client calls that failed for a reason other than a
// definitive answer, to run again (up to five times each) with no fault; a
// replace re-reads the generation first, as a client would.
func (r *runner) retries() []op {
	var redo []op
	for _, oc := range r.outcomes {
		if oc.err == nil || definitive(oc.err) || !retriable[oc.op.kind] {
			continue
		}
		o := oc.op
		o.fault, o.faultN, o.retries = "", 0, 5
		if o.kind == opReplace {
			o.ifMatch = true
		}
		redo = append(redo, o)
	}
	return redo
}

// settlements repeat, for each trace whose hold state is still ambiguous
// (a failed or overlapping hold or release, and not every hold it may
// have ends), the hold call that began last.
func (r *runner) settlements() []op {
	at := r.now()
	var settle []op
	for _, l := range r.m.Labels() {
		hs := r.m.holds[l]
		if len(hs) == 0 || r.m.DefinitelyHeld(l, at) || r.m.DefinitelyUnheld(l, at) {
			continue
		}
		if _, ends := r.m.EndedBy(l, at); ends {
			continue
		}
		last := hs[0]
		for _, h := range hs {
			if h.Start.After(last.Start) {
				last = h
			}
		}
		kind := opHold
		if last.Release {
			kind = opRelease
		}
		tr, _ := r.m.TraceOf(l)
		o := op{kind: kind, canvas: tr.Canvas, label: l, retries: 5, noEnd: last.NoEnd}
		if last.ends() {
			o.until = last.UntilMax.Sub(last.Start).Truncate(time.Minute)
		}
		settle = append(settle, o)
	}
	return settle
}

// indexView says what the index lists, for each toplevel a leaked trace
// object names, and what it records of the trace: it shows why GC kept it.
func (r *runner) indexView(ctx context.Context, v Violation, s *Snapshot) string {
	tr, _ := r.m.TraceOf(v.Label)
	o, ok := s.Objects[r.m.Key(v.Label)]
	if !ok {
		return ""
	}
	c := r.m.Canvases[tr.Canvas]
	var b strings.Builder
	fmt.Fprintf(&b, "; at %s the index lists", stamp(r.now()))
	byID := map[traces.TraceID]int{}
	for _, l := range r.m.Labels() {
		t, _ := r.m.TraceOf(l)
		byID[t.ID] = l
	}
	for _, x := range s.possibleNames(o) {
		list, err := r.sys.recent(ctx, c, x, r.m.Keep+2)
		if err != nil {
			return ""
		}
		var ls []string
		for _, sm := range list {
			ls = append(ls, fmt.Sprintf("t%d", byID[sm.ID]))
		}
		fmt.Fprintf(&b, " toplevel %d: [%s]", x, strings.Join(ls, " "))
	}
	if rec, err := r.sys.get(ctx, c, tr.ID); err == nil {
		fmt.Fprintf(&b, "; its index record names %v", rec.Record.TLIDs)
	}
	return b.String()
}

// runBatched runs ops in rounds of up to four.
func (r *runner) runBatched(ctx context.Context, ops []op) {
	for len(ops) > 0 {
		n := min(4, len(ops))
		r.runRound(ctx, round(ops[:n]))
		ops = ops[n:]
	}
}

// readChecks reads, through the service, every committed trace present in
// s (it must come back at its object's generation with every layer reads
// certainly merge) and lists every toplevel (each listed trace must read,
// or answer 404 if its object is gone and then be gone from the index).
func (r *runner) readChecks(ctx context.Context, s *Snapshot) {
	var vs []Violation
	for _, l := range r.m.Labels() {
		key := r.m.Key(l)
		o, ok := s.Objects[key]
		if !ok || !r.m.Committed(l, s.At) {
			continue
		}
		tr, _ := r.m.TraceOf(l)
		rd, err := r.sys.get(ctx, r.m.Canvases[tr.Canvas], tr.ID)
		if err != nil {
			vs = append(vs, Violation{InvRead, l, key, fmt.Sprintf("%s: reading the committed trace failed: %v", r.m.describe(l), err)})
			continue
		}
		if rd.Generation != o.Gen {
			vs = append(vs, Violation{InvRead, l, key, fmt.Sprintf("%s: read generation %d, the object is at %d", r.m.describe(l), rd.Generation, o.Gen)})
			continue
		}
		have := map[uint64]bool{}
		for _, fr := range rd.Trace.FunctionResults {
			have[fr.ExprID] = true
		}
		for _, lo := range r.m.DefiniteLayers(l, s) {
			for _, e := range lo.Exprs {
				if !have[e] {
					vs = append(vs, Violation{InvRead, l, lo.Key, fmt.Sprintf(
						"%s: the read lacks layer %d (generation %d), which an acknowledged layer at least as high makes part of the trace",
						r.m.describe(l), lo.Layer, lo.Base)})
					break
				}
			}
		}
	}
	for ci, c := range r.m.Canvases {
		for x := traces.TLID(1); x <= allTLIDs; x++ {
			list, err := r.sys.recent(ctx, c, x, tracestore.MaxListLimit)
			if err != nil {
				r.fatalf("list: %v", err)
			}
			for _, sm := range list {
				key := traces.TraceKey(c, sm.ID)
				_, present := s.Objects[key]
				_, err := r.sys.get(ctx, c, sm.ID)
				switch {
				case present && err != nil:
					vs = append(vs, Violation{InvRead, r.m.byKey[key], key, fmt.Sprintf(
						"listed under toplevel %d of canvas %c, object present, but reading it failed: %v", x, 'A'+ci, err)})
				case !present && !isNotFound(err):
					vs = append(vs, Violation{InvRead, r.m.byKey[key], key, fmt.Sprintf(
						"listed under toplevel %d of canvas %c, object gone, but reading it answered %v instead of 404", x, 'A'+ci, err)})
				case !present:
					if still, err := r.sys.indexed(ctx, c, sm.ID); err != nil {
						r.fatalf("index: %v", err)
					} else if still {
						vs = append(vs, Violation{InvRead, r.m.byKey[key], key, fmt.Sprintf(
							"listed under toplevel %d of canvas %c, object gone, read answered 404 but the index rows stayed", x, 'A'+ci)})
					}
				}
			}
		}
	}
	r.report(vs)
}
