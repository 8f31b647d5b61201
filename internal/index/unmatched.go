package index

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// Queries for unmatched requests ("404s"). Their rows are never renewed:
// the listing filters by time, and rows leave when the route is dismissed,
// when the deletion notification of their object arrives (RemoveUnmatched)
// or with their canvas.

var putUnmatchedSQL = `
WITH i AS (
  INSERT INTO unmatched (canvas_id, module, path, modifier, trace_id, ts)
  SELECT $1, $2, $3, $4, $5, $6 WHERE ` + notDeleted + `
  ON CONFLICT DO NOTHING
)
SELECT NOT ` + notDeleted

// PutUnmatched indexes one unmatched request. A repeat changes nothing. A
// deleted canvas wraps traces.ErrNotFound and writes nothing. Errors wrap
// traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) PutUnmatched(ctx context.Context, e traces.UnmatchedEntry) error {
	var deleted bool
	if err := db.pool.QueryRow(ctx, putUnmatchedSQL, [16]byte(e.Canvas), e.Module, e.Path, e.Modifier, [16]byte(e.ID), e.Timestamp).Scan(&deleted); err != nil {
		return fmt.Errorf("put unmatched %s/%s: %w", e.Canvas, e.ID, translate(err))
	}
	if deleted {
		return fmt.Errorf("put unmatched %s/%s: the canvas was deleted: %w", e.Canvas, e.ID, traces.ErrNotFound)
	}
	return nil
}

// listUnmatchedSQL is a loose index scan of the primary key (canvas_id,
// module, path, modifier, trace_id), walked backwards: each step jumps to
// the newest row (trace IDs are UUIDv7) of the next lower route, so the
// cost grows with the number of routes, not with how often each was hit.
// A route whose newest request is older than $2 is skipped (its older ones
// are older still). The walk visits every route of the canvas, then a top-N
// sort keeps the $3 newest: still one index scan, and the limit drops the
// oldest routes rather than those that sort last.
const listUnmatchedSQL = `
WITH RECURSIVE r AS (
  (SELECT module, path, modifier, trace_id, ts FROM unmatched
   WHERE canvas_id = $1
   ORDER BY module DESC, path DESC, modifier DESC, trace_id DESC LIMIT 1)
  UNION ALL
  SELECT x.module, x.path, x.modifier, x.trace_id, x.ts FROM r
  CROSS JOIN LATERAL (
    SELECT module, path, modifier, trace_id, ts FROM unmatched u
    WHERE u.canvas_id = $1 AND (u.module, u.path, u.modifier) < (r.module, r.path, r.modifier)
    ORDER BY u.module DESC, u.path DESC, u.modifier DESC, u.trace_id DESC LIMIT 1
  ) AS x
)
SELECT module, path, modifier, trace_id, ts FROM r WHERE ts >= $2 ORDER BY trace_id DESC LIMIT $3`

// ListUnmatched returns, for each (module, path, modifier) of the canvas,
// its most recent unmatched request if that arrived at or after since:
// newest first (by trace ID, UUIDv7), the limit newest routes. One round
// trip. Errors wrap
// traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) ListUnmatched(ctx context.Context, c traces.CanvasID, since time.Time, limit int) ([]traces.UnmatchedEntry, error) {
	rows, err := db.pool.Query(ctx, listUnmatchedSQL, [16]byte(c), since, int64(limit))
	if err != nil {
		return nil, fmt.Errorf("list unmatched of %s: %w", c, translate(err))
	}
	defer rows.Close()
	out := []traces.UnmatchedEntry{}
	for rows.Next() {
		e := traces.UnmatchedEntry{Canvas: c}
		var id [16]byte
		if err := rows.Scan(&e.Module, &e.Path, &e.Modifier, &id, &e.Timestamp); err != nil {
			return nil, fmt.Errorf("list unmatched of %s: %w", c, translate(err))
		}
		e.ID, e.Timestamp = id, e.Timestamp.UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list unmatched of %s: %w", c, translate(err))
	}
	return out, nil
}

const dismissUnmatchedSQL = `DELETE FROM unmatched WHERE canvas_id = $1 AND module = $2 AND path = $3 AND modifier = $4`

// DismissUnmatched removes every unmatched request of one route and says
// how many there were (0 is not an error). Errors wrap
// traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) DismissUnmatched(ctx context.Context, c traces.CanvasID, module, path, modifier string) (int, error) {
	tag, err := db.pool.Exec(ctx, dismissUnmatchedSQL, [16]byte(c), module, path, modifier)
	if err != nil {
		return 0, fmt.Errorf("dismiss unmatched of %s: %w", c, translate(err))
	}
	return int(tag.RowsAffected()), nil
}

const removeUnmatchedSQL = `
DELETE FROM unmatched u
USING unnest($1::uuid[], $2::uuid[]) AS r(canvas_id, trace_id)
WHERE u.canvas_id = r.canvas_id AND u.trace_id = r.trace_id`

// RemoveUnmatched removes the index rows of unmatched requests whose
// objects were deleted, in one statement; the generation of each Deletion
// is ignored (unmatched objects are written once). Rows already gone are
// skipped, so a redelivered batch is harmless. It has the signature of
// notify.Options.Unmatched. Errors wrap traces.ErrUnavailable when the
// server cannot be reached. Safe for concurrent use.
func (db *DB) RemoveUnmatched(ctx context.Context, ds []Deletion) error {
	if len(ds) == 0 {
		return nil
	}
	ds = slices.Clone(ds)
	slices.SortFunc(ds, func(a, b Deletion) int {
		if c := bytes.Compare(a.Canvas[:], b.Canvas[:]); c != 0 {
			return c
		}
		return bytes.Compare(a.ID[:], b.ID[:])
	})
	canvases := make([][16]byte, len(ds))
	ids := make([][16]byte, len(ds))
	for i, d := range ds {
		canvases[i], ids[i] = d.Canvas, d.ID
	}
	if _, err := db.pool.Exec(ctx, removeUnmatchedSQL, canvases, ids); err != nil {
		return fmt.Errorf("remove %d unmatched: %w", len(ds), translate(err))
	}
	return nil
}
