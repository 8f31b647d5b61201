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

// layerObjects is what adding a layer needs from Cloud Storage beyond
// Create, Open and Stat.
type layerObjects interface {
	// SetTemporaryHold places (held) or releases the object's hold; a
	// non-zero customTime is set in the same PATCH.
	SetTemporaryHold(ctx context.Context, key string, held bool, customTime time.Time) (ObjectInfo, error)
}

// layerIndex is what adding a layer needs from the index.
type layerIndex interface {
	// AddLayer records layer n if the trace's rows still describe
	// generation; ErrNotFound if not indexed, ErrPreconditionFailed if
	// replaced.
	AddLayer(ctx context.Context, c CanvasID, id TraceID, generation int64, n int, tlids []TLID) (held bool, err error)
}

// Layer objects hold the layer document of AppendLayerMsgpack plus one key,
// baseGeneration: the generation of the trace object the layer was added
// to. A replace resets the layer count and deletes the old layer objects
// only after its index commit, so for a moment old and new layers share
// numbers; reads skip a layer whose baseGeneration is not the generation of
// the trace object they read, so a layer never applies to a trace it was
// not computed for.
const mpBaseGeneration = "\xaebaseGeneration"

// maxLayerAttempts bounds how many layer numbers AddLayer tries when
// concurrent adds keep taking the next one.
const maxLayerAttempts = 32

// layerReads bounds how many layer objects a read fetches at once.
const layerReads = 8

// AddedLayer is the outcome of AddLayer.
type AddedLayer struct {
	N          int   // the layer's number (1-based)
	Generation int64 // the trace object generation the layer applies to
}

// AddLayer adds a layer of function results to a trace ("execute
// function"): a new object at LayerKey(c, id, n), n = Record.Layers+1,
// written create-only with customTime = now (a concurrent add that took n
// makes this one try n+1), then the index: layers = n, tlids ∪ the layer's
// tlids (and the results' tlids), one round trip. A layer added to a held
// trace is held too. Reads merge layers in order, the later winning.
//
// A trace that is not indexed wraps ErrNotFound; one replaced while the
// layer was being written wraps ErrPreconditionFailed (the layer object is
// deleted again: it was computed for the old trace). Empty results wrap
// ErrInvalid. Safe for concurrent use.
func (s *Service) AddLayer(ctx context.Context, c CanvasID, id TraceID, tlids []TLID, results []FunctionResult) (AddedLayer, error) {
	if len(results) == 0 {
		return AddedLayer{}, Invalid("functionResults", "required")
	}
	lim := s.Limits.OrDefault()
	tlids, err := unionTLIDs(tlids, results, lim.MaxTLIDs)
	if err != nil {
		return AddedLayer{}, err
	}
	rec, err := s.index.Get(ctx, c, id)
	if err != nil {
		return AddedLayer{}, fmt.Errorf("add layer to %s: %w", id, err)
	}
	if rec.Layers >= MaxLayers {
		// Every read fetches every layer and GC renews each: bound them.
		return AddedLayer{}, fmt.Errorf("add layer to %s: the trace has %d layers, the most it may have; replace it (PUT) to start afresh: %w",
			id, rec.Layers, ErrExhausted)
	}
	now := s.now()
	ct := now.UTC().Truncate(time.Second)
	doc := appendStoredLayer(make([]byte, 0, 1024), rec.Generation, tlids, results)
	sum := sha256.Sum256(doc)
	hash := hex.EncodeToString(sum[:])
	body, err := compress(doc)
	if err != nil {
		return AddedLayer{}, fmt.Errorf("compress layer: %w", err)
	}
	n, key, err := s.createLayer(ctx, c, id, rec.Layers+1, body, hash, ct)
	if err != nil {
		return AddedLayer{}, err
	}
	if rec.Held {
		if _, err := s.objects.SetTemporaryHold(ctx, key, true, time.Time{}); err != nil {
			return AddedLayer{}, fmt.Errorf("hold %s: %w", key, err)
		}
	}
	held, err := s.index.AddLayer(ctx, c, id, rec.Generation, n, tlids)
	if err != nil {
		if errors.Is(err, ErrPreconditionFailed) || errors.Is(err, ErrNotFound) {
			if derr := s.objects.Delete(ctx, key, 0); derr != nil && !errors.Is(derr, ErrNotFound) {
				s.log.Warn("delete orphan layer", "key", key, "err", derr)
			}
		}
		return AddedLayer{}, fmt.Errorf("index %s: %w", key, err)
	}
	if held && !rec.Held {
		// Held while the layer was being written: the hold placed on layers
		// 1..n-1 may have missed this one, and GC skips held traces.
		if _, err := s.objects.SetTemporaryHold(ctx, key, true, time.Time{}); err != nil {
			return AddedLayer{}, fmt.Errorf("hold %s: %w", key, err)
		}
	}
	return AddedLayer{N: n, Generation: rec.Generation}, nil
}

// MaxLayers bounds the layers of one trace.
const MaxLayers = 100

// createLayer writes body at the first free layer number from n on.
func (s *Service) createLayer(ctx context.Context, c CanvasID, id TraceID, n int, body []byte, hash string, ct time.Time) (int, string, error) {
	obj := NewObject{
		ContentType: contentType, ContentEncoding: gzipEncoding, CustomTime: ct,
		Metadata: map[string]string{metaFormat: FormatVersion, metaSHA256: hash},
	}
	for range maxLayerAttempts {
		key := LayerKey(c, id, n)
		_, err := s.objects.Create(ctx, key, body, obj)
		if err == nil {
			return n, key, nil
		}
		if !errors.Is(err, ErrPreconditionFailed) {
			return 0, "", fmt.Errorf("add layer %s: %w", key, err)
		}
		// Taken by a concurrent add, or by our own earlier attempt that the
		// adapter retried after it had landed.
		if info, serr := s.objects.Stat(ctx, key); serr == nil && info.Metadata[metaSHA256] == hash {
			return n, key, nil
		}
		n++
	}
	return 0, "", fmt.Errorf("add layer to %s: %d layer numbers taken by concurrent adds: %w", id, maxLayerAttempts, ErrExhausted)
}

// appendStoredLayer appends a layer object's document: AppendLayerMsgpack's
// map with baseGeneration as a third key (DecodeLayer skips it).
func appendStoredLayer(dst []byte, base int64, tlids []TLID, results []FunctionResult) []byte {
	at := len(dst)
	dst = AppendLayerMsgpack(dst, tlids, results)
	dst[at] = 0x83 // fixmap of 3: AppendLayerMsgpack wrote 0x82
	dst = append(dst, mpBaseGeneration...)
	return appendInt(dst, base)
}

// decodeStoredLayer reads a layer object's document.
func decodeStoredLayer(doc []byte, lim Limits) (Layer, int64, error) {
	lim.MaxBody = int64(len(doc))
	tlids, results, err := DecodeLayer(doc, false, lim)
	if err != nil {
		return Layer{}, 0, err
	}
	var base int64
	err = DecodeFields(doc, false, lim, map[string]func(*Reader, string) error{
		"baseGeneration": func(r *Reader, f string) (err error) {
			base, err = r.Int(f)
			return err
		},
	})
	if err != nil {
		return Layer{}, 0, err
	}
	return Layer{TLIDs: tlids, FunctionResults: results}, base, nil
}

// readLayers fetches layers 1..n of a trace whose object is at generation
// gen, in order, a few at a time. A layer object that is gone (expired, or
// dropped by a replace) or that names another generation is skipped.
func (s *Service) readLayers(ctx context.Context, c CanvasID, id TraceID, n int, gen int64) ([]Layer, error) {
	layers := make([]Layer, n)
	keep := make([]bool, n)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(layerReads)
	for i := range n {
		key := LayerKey(c, id, i+1)
		g.Go(func() error {
			raw, info, err := s.objects.Open(gctx, key)
			if errors.Is(err, ErrNotFound) {
				return nil
			}
			if err != nil {
				return fmt.Errorf("layer %d: %w", i+1, err)
			}
			doc := raw
			if info.ContentEncoding == gzipEncoding {
				if doc, err = decompress(raw); err != nil {
					return fmt.Errorf("layer %d: decompress: %w", i+1, err)
				}
			}
			l, base, err := decodeStoredLayer(doc, s.Limits)
			if err != nil {
				return fmt.Errorf("layer %d: %w", i+1, err)
			}
			if base != gen {
				return nil
			}
			layers[i], keep[i] = l, true
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	out := layers[:0]
	for i, l := range layers {
		if keep[i] {
			out = append(out, l)
		}
	}
	return out, nil
}
