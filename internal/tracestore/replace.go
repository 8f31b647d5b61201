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

// replaceObjects is what Replace needs from Cloud Storage beyond Create.
type replaceObjects interface {
	// Replace writes a new generation of key only if the live generation is
	// ifGeneration. A mismatch wraps traces.ErrPreconditionFailed; a held
	// object wraps traces.ErrHeld.
	Replace(ctx context.Context, key string, body []byte, o traces.NewObject, ifGeneration int64) (traces.ObjectInfo, error)
	// Delete removes key (ifGeneration 0: any generation). Absent wraps
	// traces.ErrNotFound; held wraps traces.ErrHeld.
	Delete(ctx context.Context, key string, ifGeneration int64) error
}

// replaceIndex is what Replace needs from the index.
type replaceIndex interface {
	// BeginOp marks the trace with an operation token and returns its record.
	BeginOp(ctx context.Context, c traces.CanvasID, id traces.TraceID) (traces.Record, index.Token, error)
	// DropOp removes a token of an operation that changed no object.
	DropOp(ctx context.Context, c traces.CanvasID, id traces.TraceID, tok index.Token) error
	// ReplaceTrace points the rows at a newer generation and removes tok.
	ReplaceTrace(ctx context.Context, r traces.Record, now time.Time, tok index.Token) (index.Replaced, error)
}

// layerDeletes bounds how many old layer objects a replace deletes at once.
const layerDeletes = 8

// Replace overwrites an indexed trace with t ("execute handler"). The
// steps, each safe to die after:
//
//  1. an operation token on the trace's row (an unknown trace wraps
//     traces.ErrNotFound: only executors create traces; a held one wraps
//     traces.ErrHeld, as GCS would refuse the overwrite);
//  2. the object, rewritten with customTime = now under a generation
//     precondition (ifGeneration, the caller's If-Match, or the one the
//     index knows), so of two concurrent replaces of the same generation
//     exactly one wins and the other wraps traces.ErrPreconditionFailed; a
//     412 whose live object holds this very document (an earlier attempt of
//     this request that landed) counts as done;
//  3. the rows, rewritten to the new generation and tlids in one round trip
//     that also removes the token; only after that commit the old layer
//     objects are deleted.
//
// If step 3 does not happen, the token stays and GC's repair step rewrites
// the rows from the object (as does the next read); the overwrite's
// deletion notification names the old generation and carries
// overwrittenByGeneration, so it removes nothing meanwhile. t.ID, when set,
// must be id; t.Timestamp defaults to the time in id and must be within a
// day of it (as for Save). Safe for concurrent use.
func (s *Service) Replace(ctx context.Context, c traces.CanvasID, id traces.TraceID, t *traces.Trace, ifGeneration int64) (Saved, error) {
	if !t.ID.IsZero() && t.ID != id {
		return Saved{}, traces.Invalid("traceID", "must be the trace ID of the path, %s", id)
	}
	if ifGeneration < 0 {
		return Saved{}, traces.Invalid("If-Match", "must be an object generation")
	}
	t.ID = id
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	now := s.now()
	if err := Prepare(t, now); err != nil {
		return Saved{}, err
	}
	st, err := traces.Store(traces.AppendTraceMsgpack(make([]byte, 0, 1024), t))
	if err != nil {
		return Saved{}, fmt.Errorf("replace trace: %w", err)
	}
	key := traces.TraceKey(c, id)
	rec, tok, err := s.index.BeginOp(ctx, c, id)
	if err != nil {
		return Saved{}, traces.PublicIf(fmt.Errorf("replace %s: %w", key, err), traces.ErrNotFound,
			"trace %s not found: a replace needs an existing trace (executors create them with POST)", id)
	}
	// unchanged ends the operation when no object was written.
	unchanged := func(err error) (Saved, error) {
		if derr := s.index.DropOp(ctx, c, id, tok); derr != nil {
			s.log.Warn("drop operation token", "key", key, "err", derr)
		}
		return Saved{}, err
	}
	if rec.Held {
		return unchanged(fmt.Errorf("replace %s: the trace is held: %w", key, traces.ErrHeld))
	}
	gen := ifGeneration
	if gen == 0 {
		gen = rec.Generation
	}
	ct := now.UTC().Truncate(time.Second)
	info, err := s.objects.Replace(ctx, key, st.Body, st.Object(ct), gen)
	if errors.Is(err, traces.ErrPreconditionFailed) {
		// The adapter retries transient failures and the client may retry
		// a request whose index write failed, so a 412 may be this very
		// document, written before: the live object then holds our hash.
		// (Another writer's identical document is the same trace.)
		if cur, serr := s.objects.Stat(ctx, key); serr == nil && cur.Generation != gen && st.Holds(cur) {
			info, ct, err = cur, cur.CustomTime, nil
		}
	}
	switch {
	case errors.Is(err, traces.ErrPreconditionFailed):
		return unchanged(traces.Public(fmt.Errorf("replace %s (if generation %d): %w", key, gen, err),
			"trace %s is no longer at generation %d: read it again (GET) and retry with its ETag", id, gen))
	case errors.Is(err, traces.ErrNotFound):
		return unchanged(traces.Public(fmt.Errorf("replace %s: %w", key, err), "trace %s not found (it expired)", id))
	case errors.Is(err, traces.ErrHeld):
		return unchanged(fmt.Errorf("replace %s (if generation %d): %w", key, gen, err))
	case err != nil:
		// Perhaps written: the token stays for the repair step.
		return Saved{}, fmt.Errorf("replace %s (if generation %d): %w", key, gen, err)
	}
	rep, err := s.index.ReplaceTrace(ctx, record(c, t, info, ct), now, tok)
	if err != nil {
		return Saved{}, fmt.Errorf("index %s: %w", key, err)
	}
	if rep.CanvasDeleted {
		return Saved{}, s.goneWithCanvas(ctx, c, id, info.Generation)
	}
	if rep.Replaced && rep.OldLayers > 0 {
		s.dropLayers(ctx, c, id, rep.OldLayers, info.Generation)
	}
	s.renewDue(ctx, c, rep.Due)
	return Saved{ID: id, Generation: info.Generation}, nil
}

// goneWithCanvas ends a replace that wrote generation gen of trace id into
// canvas c after c was deleted (the deletion job may have listed it before,
// or failed and wait to be resumed): the trace goes with its canvas, its
// new object and its rows now, and the caller learns so. Acknowledged, the
// replace would leave the rows of the overwritten document (the index
// writes nothing into a deleted canvas), and GC would keep the new object
// for the old document's toplevels, not its own.
func (s *Service) goneWithCanvas(ctx context.Context, c traces.CanvasID, id traces.TraceID, gen int64) error {
	key := traces.TraceKey(c, id)
	s.dropUpload(ctx, key, gen)
	if _, err := s.index.Remove(ctx, c, id, gen); err != nil {
		s.log.Warn("remove rows of a deleted canvas", "key", key, "err", err)
	}
	return traces.Public(fmt.Errorf("replace %s: the canvas was deleted: %w", key, traces.ErrNotFound), "canvas %s was deleted", c)
}

// dropLayers deletes those of layer objects 1..n of a replaced trace that
// were not added to its generation gen (the new trace object's): once the
// index says 0 layers, a concurrent add may take a free number among 1..n
// for the new trace, and that layer stays. Each delete names the generation
// it looked at. A hold that read the old layer count may have held an old
// layer after the overwrite; the layer is no longer the trace's, and no
// release would ever reach it (a release covers the layers the index
// counts), so its hold is cleared and it is deleted. Failures are logged,
// not returned: the replace has committed, reads skip layers of an older
// generation, and the lifecycle rule expires what is left.
func (s *Service) dropLayers(ctx context.Context, c traces.CanvasID, id traces.TraceID, n int, gen int64) {
	var g errgroup.Group
	g.SetLimit(layerDeletes)
	for i := 1; i <= n; i++ {
		g.Go(func() error {
			s.dropLayer(ctx, traces.LayerKey(c, id, i), gen)
			return nil
		})
	}
	_ = g.Wait()
}

// dropLayer deletes the layer object at key unless it was added to
// generation gen of its trace, clearing its hold first if a hold left it
// held (see dropLayers). Whose layer it is, its metadata says; a layer
// written before the metadata named it is read. (Its creation time does
// not tell: an add that read the index before a replace's index write
// writes a layer of the old generation after the new trace object.)
// Failures are logged.
func (s *Service) dropLayer(ctx context.Context, key string, gen int64) {
	info, err := s.objects.Stat(ctx, key)
	if err == nil {
		base, ok := traces.LayerBase(info)
		if !ok {
			base, err = s.layerBase(ctx, key, &info)
		}
		if err == nil && base != gen {
			s.deleteLayer(ctx, key, info.Generation)
		}
	}
	if err != nil && !errors.Is(err, traces.ErrNotFound) {
		s.log.Warn("drop old layer", "key", key, "err", err)
	}
}

// layerBase reads the layer object at key for the generation its document
// names, and sets *info to the object it read.
func (s *Service) layerBase(ctx context.Context, key string, info *traces.ObjectInfo) (int64, error) {
	raw, got, err := s.objects.Open(ctx, key)
	if err != nil {
		return 0, err
	}
	_, base, err := traces.DecodeStoredLayer(raw, s.o.Limits)
	*info = got
	return base, err
}

// deleteLayer deletes generation gen of the layer object at key, clearing
// its hold first if a hold left it held; a newer object at key stays.
// Failures are logged.
func (s *Service) deleteLayer(ctx context.Context, key string, gen int64) {
	err := s.objects.Delete(ctx, key, gen)
	if errors.Is(err, traces.ErrHeld) {
		if _, err = s.objects.SetTemporaryHold(ctx, key, false, time.Time{}); err == nil {
			err = s.objects.Delete(ctx, key, gen)
		}
	}
	if err != nil && !errors.Is(err, traces.ErrNotFound) && !errors.Is(err, traces.ErrPreconditionFailed) {
		s.log.Warn("drop old layer", "key", key, "err", err)
	}
}
