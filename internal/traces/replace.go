package traces

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
)

// replaceObjects is what Replace needs from Cloud Storage beyond Create.
type replaceObjects interface {
	// Replace writes a new generation of key only if the live generation is
	// ifGeneration (0: only if absent). A mismatch wraps
	// ErrPreconditionFailed; a held object wraps ErrHeld.
	Replace(ctx context.Context, key string, body []byte, o NewObject, ifGeneration int64) (ObjectInfo, error)
	// Delete removes key (ifGeneration 0: any generation). Absent wraps
	// ErrNotFound; held wraps ErrHeld.
	Delete(ctx context.Context, key string, ifGeneration int64) error
}

// replaceIndex is what Replace needs from the index.
type replaceIndex interface {
	// ReplaceTrace points the trace's rows at r.Generation (layers 0) unless
	// they already describe it or a newer one; oldLayers is the layer count
	// before.
	ReplaceTrace(ctx context.Context, r Record) (replaced bool, oldLayers int, err error)
}

// layerDeletes bounds how many old layer objects a replace deletes at once.
const layerDeletes = 8

// Replace overwrites a trace with t ("execute handler"): the object is
// rewritten with customTime = now under a generation precondition, so of
// two concurrent replaces of the same generation exactly one wins and the
// other wraps ErrPreconditionFailed. ifGeneration is the caller's If-Match;
// 0 means "the generation the index knows", or create-only when the trace
// is not indexed. t.ID, when set, must be id; t.Timestamp defaults to the
// time in id, and must be within a day of it (as for Save).
//
// The index rows then describe the new generation and tlids (stale
// trace_tlids rows removed, layers 0) in one round trip; only after that
// commit are the old layer objects deleted (gone already is fine; a failure
// is logged, and the leftover is ignored by reads because it names the old
// generation, and expires by the lifecycle rule). The overwrite's
// OBJECT_DELETE names the old generation and carries
// overwrittenByGeneration, so it removes no rows. A held trace wraps ErrHeld
// (GCS refuses to overwrite it). Created is true when no object existed.
// Safe for concurrent use.
func (s *Service) Replace(ctx context.Context, c CanvasID, id TraceID, t *Trace, ifGeneration int64) (Saved, error) {
	if !t.ID.IsZero() && t.ID != id {
		return Saved{}, Invalid("traceID", "must be the trace ID of the path, %s", id)
	}
	if ifGeneration < 0 {
		return Saved{}, Invalid("If-Match", "must be an object generation")
	}
	t.ID = id
	now := s.now()
	if err := Prepare(t, now); err != nil {
		return Saved{}, err
	}
	key := TraceKey(c, id)
	gen := ifGeneration
	if gen == 0 {
		rec, err := s.index.Get(ctx, c, id)
		switch {
		case err == nil:
			gen = rec.Generation
		case !errors.Is(err, ErrNotFound):
			return Saved{}, fmt.Errorf("replace %s: %w", key, err)
		}
	}
	doc := AppendTraceMsgpack(make([]byte, 0, 1024), t)
	sum := sha256.Sum256(doc)
	hash := hex.EncodeToString(sum[:])
	body, err := compress(doc)
	if err != nil {
		return Saved{}, fmt.Errorf("compress trace: %w", err)
	}
	ct := now.UTC().Truncate(time.Second)
	info, err := s.objects.Replace(ctx, key, body, NewObject{
		ContentType: contentType, ContentEncoding: gzipEncoding, CustomTime: ct,
		Metadata: map[string]string{metaFormat: FormatVersion, metaSHA256: hash},
	}, gen)
	if errors.Is(err, ErrPreconditionFailed) {
		// The adapter retries transient failures, so a 412 may be our own
		// earlier attempt that landed: the live object then has our hash
		// and our customTime (another writer's identical document would
		// have to land in the same second to be taken for ours).
		if cur, serr := s.objects.Stat(ctx, key); serr == nil && cur.Generation != gen &&
			cur.Metadata[metaSHA256] == hash && cur.CustomTime.Equal(ct) {
			info, err = cur, nil
		}
	}
	if err != nil {
		return Saved{}, fmt.Errorf("replace %s (if generation %d): %w", key, gen, err)
	}
	replaced, oldLayers, err := s.index.ReplaceTrace(ctx, Record{
		Canvas: c, ID: id, RootTLID: t.RootTLID, TLIDs: t.TLIDs, Timestamp: t.Timestamp,
		Generation: info.Generation, CustomTime: ct,
	})
	if err != nil {
		return Saved{}, fmt.Errorf("index %s: %w", key, err)
	}
	if replaced && oldLayers > 0 {
		s.dropLayers(ctx, c, id, oldLayers, info.Created)
	}
	return Saved{ID: id, Generation: info.Generation, Created: gen == 0}, nil
}

// dropLayers deletes layer objects 1..n of a replaced trace that were
// written before the new trace object (replacedAt): once the index says 0
// layers, a concurrent add may take a free number among 1..n for the new
// trace, and that layer stays. Each delete names the generation it looked
// at. Failures are logged, not returned: the replace has committed, reads
// skip layers of an older generation, and the lifecycle rule expires what
// is left.
func (s *Service) dropLayers(ctx context.Context, c CanvasID, id TraceID, n int, replacedAt time.Time) {
	var g errgroup.Group
	g.SetLimit(layerDeletes)
	for i := 1; i <= n; i++ {
		key := LayerKey(c, id, i)
		g.Go(func() error {
			info, err := s.objects.Stat(ctx, key)
			if err == nil && !replacedAt.IsZero() && !info.Created.Before(replacedAt) {
				return nil // written for the new trace
			}
			if err == nil {
				err = s.objects.Delete(ctx, key, info.Generation)
			}
			if err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrPreconditionFailed) {
				s.log.Warn("drop old layer", "key", key, "err", err)
			}
			return nil
		})
	}
	_ = g.Wait()
}
