package tracestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// repairIndex is what Repair and read-healing need from the index.
type repairIndex interface {
	// Reindex rewrites the rows to what the objects say and removes the
	// tokens at or before cutoff.
	Reindex(ctx context.Context, r traces.Record, now, cutoff time.Time) (index.Replaced, error)
}

// Repair converges a trace that an operation may have left half done (GC's
// repair step calls it for traces whose operation token is older than any
// operation may run; cutoff is index.Pending's). First the objects' holds
// are brought to what the index records (Options.Holds), then the index
// rows are rewritten from the trace object and its layers (tlids of the
// trace, its function results and every layer of its generation; its
// generation, root, timestamp and oldest customTime), and the tokens at or
// before cutoff go. A trace whose object is gone loses its rows; one no
// longer indexed is done. Anything that fails leaves the tokens, so the
// next pass tries again. Safe for concurrent use, also with the operations
// themselves: each of their own writes is conditional, and a token younger
// than cutoff is never removed.
func (s *Service) Repair(ctx context.Context, c traces.CanvasID, id traces.TraceID, cutoff time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	if s.o.Holds != nil {
		if err := s.o.Holds.Conform(ctx, c, id); err != nil && !errors.Is(err, traces.ErrNotFound) {
			return fmt.Errorf("repair %s: %w", id, err)
		}
	}
	rec, err := s.index.Get(ctx, c, id)
	if errors.Is(err, traces.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("repair %s: %w", id, err)
	}
	key := traces.TraceKey(c, id)
	raw, info, err := s.objects.Open(ctx, key)
	if errors.Is(err, traces.ErrNotFound) {
		if _, err := s.index.Remove(ctx, c, id, rec.Generation); err != nil {
			return fmt.Errorf("repair %s: %w", id, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("repair %s: %w", id, err)
	}
	t, err := traces.DecodeStoredTrace(raw, s.o.Limits)
	if err != nil {
		return fmt.Errorf("repair %s: %w", id, err)
	}
	r := record(c, t, info, info.CustomTime)
	var stale []int64
	if info.Generation == rec.Generation && rec.Layers > 0 {
		layers, oldest, st, err := s.readLayers(ctx, c, id, rec.Layers, info.Generation)
		stale = st
		if err != nil {
			return fmt.Errorf("repair %s: %w", id, err)
		}
		for _, l := range layers {
			r.TLIDs = append(r.TLIDs, l.TLIDs...)
		}
		if !oldest.IsZero() && oldest.Before(r.CustomTime) {
			r.CustomTime = oldest
		}
	}
	rep, err := s.index.Reindex(ctx, r, s.now(), cutoff)
	if err != nil {
		return fmt.Errorf("repair %s: %w", id, err)
	}
	if rep.Replaced && info.Generation != rec.Generation && rep.OldLayers > 0 {
		s.dropLayers(ctx, c, id, rep.OldLayers, info.Generation)
	}
	// A layer of an older generation at a number the trace counts (a layer
	// add racing a replace, whose own add then failed before clearing it)
	// would be renewed by GC as the trace's, forever: delete that very
	// object (by its generation, so a layer written since stays).
	for i, gen := range stale {
		if gen != 0 {
			s.deleteLayer(ctx, traces.LayerKey(c, id, i+1), gen)
		}
	}
	s.renewDue(ctx, c, rep.Due)
	return nil
}
