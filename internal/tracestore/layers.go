package tracestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// layerObjects is what adding a layer needs from Cloud Storage beyond
// Create, Open and Stat.
type layerObjects interface {
	// SetTemporaryHold places (held) or releases the object's hold; a
	// non-zero customTime is set in the same PATCH.
	SetTemporaryHold(ctx context.Context, key string, held bool, customTime time.Time) (traces.ObjectInfo, error)
}

// layerIndex is what adding a layer needs from the index.
type layerIndex interface {
	// ReserveLayer takes the next layer number and an operation token.
	ReserveLayer(ctx context.Context, c traces.CanvasID, id traces.TraceID, max int) (traces.Record, index.Token, error)
	// CommitLayer links the layer's tlids if the rows still describe
	// generation, and removes tok unless the hold is no longer held.
	CommitLayer(ctx context.Context, c traces.CanvasID, id traces.TraceID, generation int64, tlids []traces.TLID, tok index.Token, held bool, now time.Time) (bool, []traces.TLID, error)
	// EndOp removes tok if the trace's hold is still held.
	EndOp(ctx context.Context, c traces.CanvasID, id traces.TraceID, tok index.Token, held bool) (bool, error)
}

// maxLayerAttempts bounds how many layer numbers AddLayer reserves when the
// object at a reserved number exists already (a stale layer of a replaced
// generation whose deletion failed).
const maxLayerAttempts = 4

// layerReads bounds how many layer objects a read fetches at once.
const layerReads = 8

// MaxLayers bounds the layer numbers of one trace: every read fetches every
// layer and GC renews each.
const MaxLayers = 100

// AddedLayer is the outcome of AddLayer.
type AddedLayer struct {
	N          int   // the layer's number (1-based)
	Generation int64 // the trace object generation the layer applies to
}

// AddLayer adds a layer of function results to a trace ("execute
// function"). The steps, each safe to die after:
//
//  1. the next layer number and an operation token on the trace's row;
//  2. the layer object at LayerKey(c, id, n), create-only, customTime =
//     now, naming the trace generation it was computed for; held if the
//     trace is;
//  3. the layer's tlids (and its results') linked to the trace in one round
//     trip that removes the token; the toplevels it links may gain an old
//     keeper, so they are due at once (and handed to the Renewer).
//
// If a concurrent hold or release changed the trace's hold meanwhile, the
// layer is brought to the new state before the token goes; whatever is left
// undone, GC's repair step completes. A number whose object was never
// written is skipped by reads and GC. Reads merge layers in order, the
// later winning.
//
// A trace that is not indexed wraps traces.ErrNotFound; one replaced while
// the layer was being written wraps traces.ErrPreconditionFailed (the layer
// object is deleted again: it was computed for the old trace); one with
// MaxLayers layers wraps traces.ErrExhausted. Empty results wrap
// traces.ErrInvalid. Safe for concurrent use.
func (s *Service) AddLayer(ctx context.Context, c traces.CanvasID, id traces.TraceID, tlids []traces.TLID, results []traces.FunctionResult) (AddedLayer, error) {
	if len(results) == 0 {
		return AddedLayer{}, traces.Invalid("functionResults", "required")
	}
	tlids, err := traces.LayerTLIDs(tlids, results, s.o.Limits.OrDefault().MaxTLIDs)
	if err != nil {
		return AddedLayer{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	now := s.now()
	ct := now.UTC().Truncate(time.Second)
	for range maxLayerAttempts {
		rec, tok, err := s.index.ReserveLayer(ctx, c, id, MaxLayers)
		switch {
		case errors.Is(err, traces.ErrNotFound):
			return AddedLayer{}, traces.Public(fmt.Errorf("add layer to %s: %w", id, err), "trace %s not found", id)
		case errors.Is(err, traces.ErrExhausted):
			return AddedLayer{}, traces.Public(fmt.Errorf("add layer to %s: %w", id, err),
				"trace %s has %d layers, the most it may have: replace it (PUT) to start afresh", id, MaxLayers)
		case err != nil:
			return AddedLayer{}, fmt.Errorf("add layer to %s: %w", id, err)
		}
		n := rec.Layers
		key := traces.LayerKey(c, id, n)
		st, err := traces.Store(traces.AppendStoredLayer(make([]byte, 0, 1024), rec.Generation, tlids, results))
		if err != nil {
			return AddedLayer{}, fmt.Errorf("add layer to %s: %w", id, err)
		}
		_, err = s.objects.Create(ctx, key, st.Body, st.LayerObject(ct, rec.Generation))
		if errors.Is(err, traces.ErrPreconditionFailed) {
			// Our own earlier attempt that the adapter retried after it had
			// landed, or a stale layer of a replaced generation.
			if info, serr := s.objects.Stat(ctx, key); serr == nil && st.Holds(info) {
				err = nil
			} else {
				// A stale layer whose deletion by a replace failed: delete it
				// now (the number stays a hole), or GC, which renews layers
				// by number, would renew it for as long as the trace lives.
				if trace, terr := s.objects.Stat(ctx, traces.TraceKey(c, id)); terr == nil {
					s.dropLayer(ctx, key, trace.Generation)
				}
				if derr := s.index.DropOp(ctx, c, id, tok); derr != nil {
					return AddedLayer{}, fmt.Errorf("add layer %s: %w", key, derr)
				}
				continue
			}
		}
		if err != nil {
			// Perhaps written: the token stays for the repair step.
			return AddedLayer{}, fmt.Errorf("add layer %s: %w", key, err)
		}
		return s.commitLayer(ctx, rec, tok, key, tlids, now)
	}
	return AddedLayer{}, fmt.Errorf("add layer to %s: %d layer numbers taken by stale layers: %w", id, maxLayerAttempts, traces.ErrExhausted)
}

// commitLayer is AddLayer after the layer object was written.
func (s *Service) commitLayer(ctx context.Context, rec traces.Record, tok index.Token, key string, tlids []traces.TLID, now time.Time) (AddedLayer, error) {
	c, id := rec.Canvas, rec.ID
	held := rec.Held
	if held {
		if err := s.setLayerHold(ctx, key, true, now); err != nil {
			return AddedLayer{}, err
		}
	}
	nowHeld, due, err := s.index.CommitLayer(ctx, c, id, rec.Generation, tlids, tok, held, now)
	if errors.Is(err, traces.ErrPreconditionFailed) || errors.Is(err, traces.ErrNotFound) {
		if derr := s.objects.Delete(ctx, key, 0); derr != nil && !errors.Is(derr, traces.ErrNotFound) {
			s.log.Warn("delete orphan layer", "key", key, "err", derr)
		}
	}
	if err != nil {
		err = fmt.Errorf("index %s: %w", key, err)
		err = traces.PublicIf(err, traces.ErrPreconditionFailed, "trace %s was replaced while the layer was written: read it again and run the function again", id)
		return AddedLayer{}, traces.PublicIf(err, traces.ErrNotFound, "trace %s not found", id)
	}
	if nowHeld != held {
		// Held or released while the layer was being written: the hold's
		// own pass may have run before this object existed.
		if err := s.setLayerHold(ctx, key, nowHeld, now); err != nil {
			return AddedLayer{}, err
		}
		if _, err := s.index.EndOp(ctx, c, id, tok, nowHeld); err != nil {
			return AddedLayer{}, fmt.Errorf("index %s: %w", key, err)
		}
	}
	s.renewDue(ctx, c, due)
	return AddedLayer{N: rec.Layers, Generation: rec.Generation}, nil
}

// setLayerHold places or releases a layer object's hold; a release also
// renews its customTime, as a release of the trace does.
func (s *Service) setLayerHold(ctx context.Context, key string, held bool, now time.Time) error {
	var ct time.Time
	if !held {
		ct = now.UTC().Truncate(time.Second)
	}
	if _, err := s.objects.SetTemporaryHold(ctx, key, held, ct); err != nil && !errors.Is(err, traces.ErrNotFound) {
		return fmt.Errorf("set hold of %s: %w", key, err)
	}
	return nil
}

// readLayers fetches layers 1..n of a trace whose object is at generation
// gen, in order, a few at a time, and the oldest customTime among them. A
// layer object that is gone (expired, never written, or dropped by a
// replace) or that names another generation is skipped; stale holds the
// generations of the latter (0: none), by layer number - 1.
func (s *Service) readLayers(ctx context.Context, c traces.CanvasID, id traces.TraceID, n int, gen int64) (_ []traces.Layer, oldest time.Time, stale []int64, _ error) {
	layers := make([]traces.Layer, n)
	cts := make([]time.Time, n)
	keep := make([]bool, n)
	stale = make([]int64, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(layerReads)
	for i := range n {
		key := traces.LayerKey(c, id, i+1)
		g.Go(func() error {
			raw, info, err := s.objects.Open(gctx, key)
			if errors.Is(err, traces.ErrNotFound) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("layer %d: %w", i+1, err)
			}
			l, base, err := traces.DecodeStoredLayer(raw, s.o.Limits)
			if err != nil {
				return fmt.Errorf("layer %d: %w", i+1, err)
			}
			if base != gen {
				stale[i] = info.Generation
				return nil
			}
			layers[i], cts[i], keep[i] = l, info.CustomTime, true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, time.Time{}, nil, err
	}
	out := layers[:0]
	for i, l := range layers {
		if keep[i] {
			out = append(out, l)
			if oldest.IsZero() || cts[i].Before(oldest) {
				oldest = cts[i]
			}
		}
	}
	return out, oldest, stale, nil
}
