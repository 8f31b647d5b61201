package holds

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// Report says what Reconcile found and did.
type Report struct {
	Checked int // traces whose objects disagreed with the index or each other
	Fixed   int // of those, traces whose objects now agree with the index
	Removed int // of those, traces whose object was gone: index rows removed
}

// stored is what a listing shows of one trace's objects.
type stored struct {
	exists     bool     // the trace object is there
	held       bool     // and is held
	layersHeld []string // keys of held layer objects
	layersFree bool     // some layer object is not held
}

// scan lists the canvas's objects (Class A listing calls, 1,000 names
// each) and groups its traces and layers by trace.
func (s *Service) scan(ctx context.Context, c traces.CanvasID) (map[traces.TraceID]*stored, error) {
	out := map[traces.TraceID]*stored{}
	prefix := traces.CanvasPrefix(c)
	for info, err := range s.objects.Objects(ctx, prefix) {
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		k, err := traces.ParseKey(info.Key)
		if err != nil || k.Canvas != c || k.Kind == traces.KindUnmatched {
			continue // not a trace or layer of this canvas: leave it alone
		}
		st := out[k.Trace]
		if st == nil {
			st = &stored{}
			out[k.Trace] = st
		}
		switch {
		case k.Kind == traces.KindTrace:
			st.exists, st.held = true, info.TemporaryHold
		case k.Kind == traces.KindLayer && info.TemporaryHold:
			st.layersHeld = append(st.layersHeld, info.Key)
		case k.Kind == traces.KindLayer:
			st.layersFree = true
		}
	}
	return out, nil
}

// consistent reports whether a trace's objects agree with each other and
// with the index's held flag.
func (st *stored) consistent(indexHeld bool) bool {
	if st == nil || !st.exists {
		return !indexHeld && (st == nil || len(st.layersHeld) == 0)
	}
	if st.held {
		return indexHeld && !st.layersFree
	}
	return !indexHeld && len(st.layersHeld) == 0
}

// Reconcile makes the objects of a canvas agree with the holds its index
// records, whatever left them otherwise (an operation whose token was lost
// with a restored backup, a tool that patched objects directly): it lists
// the canvas's objects (Class A calls, so it is an operator's tool, not a
// request path), compares each trace object's temporaryHold with the index
// and with its layers, and converges every trace that disagrees: an indexed
// trace as Conform does, a held object the index does not know is released
// (nothing would ever release it), a trace whose object is gone loses its
// rows. It continues past a trace that fails and returns the errors joined.
// Safe to run alongside requests.
func (s *Service) Reconcile(ctx context.Context, c traces.CanvasID) (Report, error) {
	var rep Report
	objs, err := s.scan(ctx, c)
	if err != nil {
		return rep, fmt.Errorf("reconcile holds of %s: %w", c, err)
	}
	hs, err := s.index.Holds(ctx, c)
	if err != nil {
		return rep, fmt.Errorf("reconcile holds of %s: %w", c, err)
	}
	indexHeld := make(map[traces.TraceID]bool, len(hs))
	for _, h := range hs {
		indexHeld[h.ID] = true
	}
	var ids []traces.TraceID
	for id, st := range objs {
		if !st.consistent(indexHeld[id]) {
			ids = append(ids, id)
		}
	}
	for id := range indexHeld {
		if _, listed := objs[id]; !listed {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b traces.TraceID) int { return bytes.Compare(a[:], b[:]) })
	var errs []error
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return rep, errors.Join(append(errs, err)...)
		}
		rep.Checked++
		var held []string
		if st := objs[id]; st != nil {
			held = st.layersHeld
			if st.held {
				held = append([]string{traces.TraceKey(c, id)}, held...)
			}
		}
		removed, err := s.converge(ctx, c, id, held)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("reconcile %s: %w", id, err))
		case removed:
			rep.Removed++
		default:
			rep.Fixed++
		}
	}
	s.log.Info("holds reconciled", "canvas_id", c, "count", rep.Checked)
	return rep, errors.Join(errs...)
}

// ReconcileTrace converges one trace as Reconcile does, without a listing:
// an indexed trace as Conform does; a trace object held but unknown to the
// index is released. Backend faults wrap traces.ErrUnavailable; an unknown
// trace with no object is not an error.
func (s *Service) ReconcileTrace(ctx context.Context, c traces.CanvasID, id traces.TraceID) error {
	if _, err := s.converge(ctx, c, id, []string{traces.TraceKey(c, id)}); err != nil {
		return fmt.Errorf("reconcile %s: %w", id, err)
	}
	return nil
}

// converge is ReconcileTrace; held are objects a listing saw held (beyond
// the index's layer count, perhaps), released if the index does not know
// the trace. removed reports that the trace object was gone.
func (s *Service) converge(ctx context.Context, c traces.CanvasID, id traces.TraceID, held []string) (removed bool, err error) {
	err = s.Conform(ctx, c, id)
	switch {
	case err == nil:
		return false, nil
	case !errors.Is(err, traces.ErrNotFound):
		return false, err
	}
	// Not indexed, or its object is gone (rows removed): nothing in the
	// index will ever release what is still held.
	now := s.now().UTC().Truncate(time.Second)
	for _, k := range held {
		if err := s.releaseObject(ctx, k, now); err != nil && !errors.Is(err, traces.ErrNotFound) {
			return false, err
		}
	}
	_, serr := s.objects.Stat(ctx, traces.TraceKey(c, id))
	return errors.Is(serr, traces.ErrNotFound), nil
}

// ReleaseHeld releases every trace the index lists as held in canvas c, as
// Release does, and returns how many it released; traces already gone are
// skipped. Its cost follows the number of holds (the quota bounds them), not
// the canvas's size: canvas deletion calls it before deleting objects, and
// releases any other held object when its delete is refused. Backend faults
// wrap traces.ErrUnavailable; retrying is safe.
func (s *Service) ReleaseHeld(ctx context.Context, c traces.CanvasID) (released int, err error) {
	hs, err := s.index.Holds(ctx, c)
	if err != nil {
		return 0, fmt.Errorf("release held of %s: %w", c, err)
	}
	for _, h := range hs {
		err := s.Release(ctx, c, h.ID)
		if errors.Is(err, traces.ErrNotFound) {
			continue
		}
		if err != nil {
			return released, fmt.Errorf("release held of %s: %w", c, err)
		}
		released++
	}
	return released, nil
}

// ReleaseAll releases every hold of a canvas: ReleaseHeld, then the canvas's
// objects are listed and any still held are released too (and the index
// with them). It lists the whole canvas (Class A calls), so it is for
// operators, not request paths. It returns how many traces it released.
// Backend faults wrap traces.ErrUnavailable; retrying is safe.
func (s *Service) ReleaseAll(ctx context.Context, c traces.CanvasID) (released int, err error) {
	released, err = s.ReleaseHeld(ctx, c)
	if err != nil {
		return released, err
	}
	objs, err := s.scan(ctx, c)
	if err != nil {
		return released, fmt.Errorf("release all of %s: %w", c, err)
	}
	now := s.now().UTC().Truncate(time.Second)
	for id, st := range objs {
		keys := st.layersHeld
		if st.held {
			keys = append([]string{traces.TraceKey(c, id)}, keys...)
		}
		if len(keys) == 0 {
			continue
		}
		for _, k := range keys {
			if err := s.releaseObject(ctx, k, now); err != nil && !errors.Is(err, traces.ErrNotFound) {
				return released, fmt.Errorf("release all of %s: release %s: %w", c, id, err)
			}
		}
		released++
	}
	s.log.Info("holds released", "canvas_id", c, "count", released)
	return released, nil
}
