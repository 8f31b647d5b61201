package index

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/tracegw/tracegw/internal/traces"
)

// Queries for the deletion-notification consumer and reconcile
// (internal/notify).

// Removed is a trace whose index rows a deletion removed: what the consumer
// needs to delete the trace's layer objects afterwards.
type Removed struct {
	Canvas     traces.CanvasID
	ID         traces.TraceID
	Generation int64 // the generation the removed rows described
	Layers     int   // layer objects 1..Layers the trace had
}

// removeManyReturningSQL deletes the traces rows whose generation is at most
// the named one, and their trace_tlids rows by primary key, returning them.
// The keys k are one relation (MATERIALIZED) before they meet trace_tlids:
// joined to d and unnest separately, a generic plan probed the primary key
// by (canvas_id, trace_id) alone, reading every row of the canvas per
// trace (3 s for 1,000 deletions in a canvas of 50,000 traces).
const removeManyReturningSQL = `
WITH d AS (
  DELETE FROM traces t
  USING unnest($1::uuid[], $2::uuid[], $3::bigint[]) AS r(canvas_id, trace_id, generation)
  WHERE t.canvas_id = r.canvas_id AND t.trace_id = r.trace_id AND t.generation <= r.generation
  RETURNING t.canvas_id, t.trace_id, t.tlids, t.generation, t.layers
), k AS MATERIALIZED (
  SELECT d.canvas_id, u.tlid, d.trace_id FROM d CROSS JOIN LATERAL unnest(d.tlids) AS u(tlid)
), dt AS (
  DELETE FROM trace_tlids tt USING k
  WHERE tt.canvas_id = k.canvas_id AND tt.tlid = k.tlid AND tt.trace_id = k.trace_id
)
SELECT canvas_id, trace_id, generation, layers FROM d`

// RemoveManyWithLayers is RemoveMany that also says which traces it removed
// and how many layers each had, in one statement (one round trip, one
// transaction, all or nothing). Rows already gone or newer than the named
// generation are skipped, so a redelivered batch is harmless. A trace named
// twice is removed if either generation allows it, and reported once.
// Errors wrap traces.ErrUnavailable when the server cannot be reached or the
// batch lost a deadlock three times in a row. Safe for concurrent use.
func (db *DB) RemoveManyWithLayers(ctx context.Context, ds []Deletion) ([]Removed, error) {
	if len(ds) == 0 {
		return nil, nil
	}
	// Key order: overlapping concurrent batches lock rows in the same order.
	ds = slices.Clone(ds)
	slices.SortFunc(ds, func(a, b Deletion) int {
		if c := bytes.Compare(a.Canvas[:], b.Canvas[:]); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	canvases := make([][16]byte, len(ds))
	ids := make([][16]byte, len(ds))
	gens := make([]int64, len(ds))
	for i, d := range ds {
		canvases[i], ids[i], gens[i] = d.Canvas, d.ID, d.Generation
	}
	var (
		out []Removed
		err error
	)
	err = retryDeadlock(func() error {
		out, err = db.removeManyReturning(ctx, canvases, ids, gens)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("remove %d traces: %w", len(ds), translate(err))
	}
	return out, nil
}

func (db *DB) removeManyReturning(ctx context.Context, canvases, ids [][16]byte, gens []int64) ([]Removed, error) {
	rows, err := db.pool.Query(ctx, removeManyReturningSQL, canvases, ids, gens)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var (
		out        []Removed
		canvas, id [16]byte
		gen        int64
		layers     int32
	)
	for rows.Next() {
		if err := rows.Scan(&canvas, &id, &gen, &layers); err != nil {
			return nil, err
		}
		out = append(out, Removed{Canvas: canvas, ID: id, Generation: gen, Layers: int(layers)})
	}
	return out, rows.Err()
}

// TraceGeneration is one indexed trace of a canvas and the object generation
// its rows describe.
type TraceGeneration struct {
	ID         traces.TraceID
	Generation int64
}

// traceGenerationsSQL is a keyset scan of the traces primary key.
const traceGenerationsSQL = `SELECT trace_id, generation FROM traces WHERE canvas_id = $1 AND trace_id > $2 ORDER BY trace_id LIMIT $3`

// TraceGenerations returns up to limit traces of canvas whose IDs sort after
// after (the zero ID starts at the beginning), in ID order — which is also
// the order of their object names. Feed the last ID back to page on; an
// empty result means done. limit must be at least 1 (else traces.ErrInvalid).
// Errors wrap traces.ErrUnavailable when the server cannot be reached. Safe
// for concurrent use.
func (db *DB) TraceGenerations(ctx context.Context, canvas traces.CanvasID, after traces.TraceID, limit int) ([]TraceGeneration, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list traces of %s: %w", canvas, traces.Invalid("limit", "must be at least 1"))
	}
	rows, err := db.pool.Query(ctx, traceGenerationsSQL, [16]byte(canvas), [16]byte(after), int64(limit))
	if err != nil {
		return nil, fmt.Errorf("list traces of %s: %w", canvas, translate(err))
	}
	defer rows.Close()
	out := make([]TraceGeneration, 0, min(limit, 1024))
	var (
		id  [16]byte
		gen int64
	)
	for rows.Next() {
		if err := rows.Scan(&id, &gen); err != nil {
			return nil, fmt.Errorf("list traces of %s: %w", canvas, translate(err))
		}
		out = append(out, TraceGeneration{ID: id, Generation: gen})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list traces of %s: %w", canvas, translate(err))
	}
	return out, nil
}

// canvasesSQL is a loose index scan of the traces primary key: one short
// index probe per distinct canvas, instead of reading every row as DISTINCT
// would.
const canvasesSQL = `
WITH RECURSIVE c AS (
  (SELECT canvas_id FROM traces WHERE canvas_id > $1 ORDER BY canvas_id LIMIT 1)
  UNION ALL
  SELECT (SELECT t.canvas_id FROM traces t WHERE t.canvas_id > c.canvas_id ORDER BY t.canvas_id LIMIT 1)
  FROM c WHERE c.canvas_id IS NOT NULL
)
SELECT canvas_id FROM c WHERE canvas_id IS NOT NULL LIMIT $2`

// Canvases returns up to limit canvases that have indexed traces, sorting
// after after (the zero ID starts at the beginning), in ID order — which is
// also the order of their object-name prefixes. Feed the last one back to
// page on; an empty result means done. limit must be at least 1. Errors wrap
// traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) Canvases(ctx context.Context, after traces.CanvasID, limit int) ([]traces.CanvasID, error) {
	if limit < 1 {
		return nil, fmt.Errorf("list canvases: %w", traces.Invalid("limit", "must be at least 1"))
	}
	rows, err := db.pool.Query(ctx, canvasesSQL, [16]byte(after), int64(limit))
	if err != nil {
		return nil, fmt.Errorf("list canvases: %w", translate(err))
	}
	defer rows.Close()
	var (
		out []traces.CanvasID
		c   [16]byte
	)
	for rows.Next() {
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("list canvases: %w", translate(err))
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list canvases: %w", translate(err))
	}
	return out, nil
}
