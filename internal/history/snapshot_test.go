package history

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/tracegw/tracegw/internal/traces"
)

// content is what a snapshot keeps of one object generation's bytes.
type content struct {
	names  []traces.TLID
	listed []traces.TLID
	base   int64
	exprs  []uint64
}

// snapshot lists the bucket and reads the index's trace rows. Object
// contents are read once per generation (cache). It must run while nothing
// else does.
func (s *system) snapshot(ctx context.Context, m *Model, cache map[string]content) (*Snapshot, error) {
	canvas := map[traces.CanvasID]int{}
	for i, c := range m.Canvases {
		canvas[c] = i
	}
	snap := &Snapshot{At: s.emu.E.Now(), Objects: map[string]Object{}, Rows: map[string]int64{}}
	for info, err := range s.gcs.Objects(ctx, "") {
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		k, err := traces.ParseKey(info.Key)
		if err != nil || (k.Kind != traces.KindTrace && k.Kind != traces.KindLayer) {
			continue
		}
		ci, ok := canvas[k.Canvas]
		if !ok {
			continue
		}
		ck := info.Key + "#" + strconv.FormatInt(info.Generation, 10)
		c, ok := cache[ck]
		if !ok {
			raw, oi, err := s.gcs.Open(ctx, info.Key)
			if errors.Is(err, traces.ErrNotFound) {
				continue // deleted since the listing (a layer the consumer removed)
			}
			if err != nil {
				return nil, fmt.Errorf("snapshot: %w", err)
			}
			if oi.Generation != info.Generation {
				return nil, fmt.Errorf("snapshot: %s changed while nothing ran (generation %d, then %d)", info.Key, info.Generation, oi.Generation)
			}
			if c, err = decodeContent(k.Kind, raw); err != nil {
				return nil, fmt.Errorf("snapshot: %s: %w", info.Key, err)
			}
			cache[ck] = c
		}
		snap.Objects[info.Key] = Object{
			Key: info.Key, Kind: k.Kind, Canvas: ci, Trace: k.Trace, Owner: traces.TraceKey(k.Canvas, k.Trace), Layer: k.Layer,
			Gen: info.Generation, CustomTime: info.CustomTime, Held: info.TemporaryHold,
			Names: c.names, Listed: c.listed, Base: c.base, Exprs: c.exprs,
		}
	}
	for _, c := range m.Canvases {
		rows, err := s.indexRows(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		for id, gen := range rows {
			snap.Rows[traces.TraceKey(c, id)] = gen
		}
	}
	return snap, nil
}

// decodeContent reads what a trace or layer object names, through the
// storage format's own decoders (traces.DecodeStoredTrace and
// DecodeStoredLayer, which also give a layer's baseGeneration).
func decodeContent(kind traces.KeyKind, raw []byte) (content, error) {
	lim := traces.Limits{MaxBody: 64 << 20}
	var c content
	if kind == traces.KindTrace {
		t, err := traces.DecodeStoredTrace(raw, lim)
		if err != nil {
			return content{}, err
		}
		c.listed = append([]traces.TLID{t.RootTLID}, t.TLIDs...)
		c.names = traces.Touched(t)
	} else {
		l, base, err := traces.DecodeStoredLayer(raw, lim)
		if err != nil {
			return content{}, err
		}
		c.names, c.base = l.TLIDs, base // DecodeLayer adds the results' tlids
		for _, fr := range l.FunctionResults {
			c.exprs = append(c.exprs, fr.ExprID)
		}
	}
	slices.Sort(c.names)
	c.names = slices.Compact(c.names)
	return c, nil
}
