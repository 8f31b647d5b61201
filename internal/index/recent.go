package index

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/tracegw/tracegw/internal/traces"
)

// recentSQL is one index-only backward scan of trace_tlids' primary key
// (canvas_id, tlid, trace_id) INCLUDE (ts, root_tlid, held): trace IDs are
// UUIDv7, so descending ID order is newest first. A test EXPLAINs this text.
const recentSQL = `SELECT trace_id, ts, root_tlid, held FROM trace_tlids WHERE canvas_id = $1 AND tlid = $2 ORDER BY trace_id DESC LIMIT $3`

// Recent returns the newest limit traces that touched toplevel tlid (as root
// or, for a function, anywhere in the callgraph), newest first; an empty
// slice if there are none. It does not judge them (Summary.Kept is zero):
// the API lists with RecentKept. limit must be at least 1 (else the error wraps
// traces.ErrInvalid). Errors wrap traces.ErrUnavailable when the server
// cannot be reached. Safe for concurrent use.
func (db *DB) Recent(ctx context.Context, canvas traces.CanvasID, tlid traces.TLID, limit int) ([]traces.Summary, error) {
	if limit < 1 {
		return nil, fmt.Errorf("recent traces of tlid %d: %w", tlid, traces.Invalid("limit", "must be at least 1"))
	}
	rows, err := db.pool.Query(ctx, recentSQL, [16]byte(canvas), int64(tlid), int64(limit))
	if err != nil {
		return nil, fmt.Errorf("recent traces of tlid %d: %w", tlid, translate(err))
	}
	defer rows.Close()
	out := make([]traces.Summary, 0, min(limit, 100))
	var (
		id   [16]byte
		ts   time.Time
		root int64
		held bool
	)
	dest := []any{&id, &ts, &root, &held} // built once: a variadic call per row would allocate
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("recent traces of tlid %d: %w", tlid, translate(err))
		}
		out = append(out, traces.Summary{ID: id, Timestamp: ts.UTC(), RootTLID: traces.TLID(root), Held: held})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("recent traces of tlid %d: %w", tlid, translate(err))
	}
	return out, nil
}

// recentManySQL runs recentSQL's scan once per requested tlid (LATERAL), so
// each toplevel costs one short index-only backward scan, in one round trip.
const recentManySQL = `
SELECT r.tlid, x.trace_id, x.ts, x.root_tlid, x.held
FROM unnest($2::bigint[]) AS r(tlid)
CROSS JOIN LATERAL (
  SELECT trace_id, ts, root_tlid, held FROM trace_tlids
  WHERE canvas_id = $1 AND tlid = r.tlid
  ORDER BY trace_id DESC LIMIT $3
) AS x`

// RecentMany is Recent for many toplevels in one round trip (the editor
// opening a canvas asks for a few hundred). The map has an entry, possibly
// an empty slice, for every requested tlid; duplicates are asked once.
// Errors as for Recent. Safe for concurrent use.
func (db *DB) RecentMany(ctx context.Context, canvas traces.CanvasID, tlids []traces.TLID, limit int) (map[traces.TLID][]traces.Summary, error) {
	if limit < 1 {
		return nil, fmt.Errorf("recent traces of %d tlids: %w", len(tlids), traces.Invalid("limit", "must be at least 1"))
	}
	out, keys := distinctTLIDs(tlids)
	if len(keys) == 0 {
		return out, nil
	}
	rows, err := db.pool.Query(ctx, recentManySQL, [16]byte(canvas), keys, int64(limit))
	if err != nil {
		return nil, fmt.Errorf("recent traces of %d tlids: %w", len(keys), translate(err))
	}
	defer rows.Close()
	var (
		tlid, root int64
		id         [16]byte
		ts         time.Time
		held       bool
	)
	err = groupByTLID(rows, out, len(keys)*limit, []any{&tlid, &id, &ts, &root, &held}, &tlid, func() traces.Summary {
		return traces.Summary{ID: id, Timestamp: ts.UTC(), RootTLID: traces.TLID(root), Held: held}
	})
	if err != nil {
		return nil, fmt.Errorf("recent traces of %d tlids: %w", len(keys), err)
	}
	return out, nil
}

// distinctTLIDs returns the map a many-toplevel list fills, with an empty
// entry per requested tlid, and those tlids once each, ascending: the
// LATERAL scans then read neighbouring index pages in order.
func distinctTLIDs(tlids []traces.TLID) (map[traces.TLID][]traces.Summary, []int64) {
	out := make(map[traces.TLID][]traces.Summary, len(tlids))
	keys := make([]int64, 0, len(tlids))
	for _, t := range tlids {
		if _, ok := out[t]; !ok {
			out[t] = []traces.Summary{}
			keys = append(keys, int64(t))
		}
	}
	slices.Sort(keys)
	return out, keys
}

// groupByTLID reads rows into out: scanning into dest sets *tlid and what
// summary turns into the row's Summary. Rows arrive grouped by tlid (one
// LATERAL scan per tlid), so they go into one slab and each toplevel gets a
// capped window of it: no per-toplevel slice growth, and appending to one
// list cannot overwrite the next.
func groupByTLID(rows pgx.Rows, out map[traces.TLID][]traces.Summary, capacity int, dest []any, tlid *int64, summary func() traces.Summary) error {
	all := make([]traces.Summary, 0, min(capacity, 4096))
	var (
		cur   traces.TLID
		start = -1
	)
	flush := func() {
		if start < 0 {
			return
		}
		w := all[start:len(all):len(all)]
		if prev := out[cur]; len(prev) > 0 { // only if a plan ever interleaved tlids
			w = append(slices.Clip(prev), w...)
		}
		out[cur] = w
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return translate(err)
		}
		if t := traces.TLID(*tlid); t != cur || start < 0 {
			flush()
			cur, start = t, len(all)
		}
		all = append(all, summary())
	}
	if err := rows.Err(); err != nil {
		return translate(err)
	}
	flush()
	return nil
}
