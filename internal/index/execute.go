package index

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/internal/traces"
)

// lockTraceSQL takes the traces row's lock before replaceTraceSQL runs. They
// are two statements of one batch (one round trip, one implicit transaction)
// so that replaceTraceSQL's snapshot is taken after the lock: a layer that
// committed trace_tlids rows while we waited is then visible to the delete
// of stale rows, instead of leaving a row that points a toplevel at a trace
// that no longer touches it.
const lockTraceSQL = `SELECT FROM traces WHERE canvas_id = $1 AND trace_id = $2 FOR UPDATE`

// replaceTraceSQL points a trace's rows at a new object generation: the
// traces row (insert or update, layers reset to 0), trace_tlids rows for
// toplevels the new trace no longer touches removed, the others upserted,
// new toplevels added. Only a newer generation may replace the row, so a
// replace whose index write is overtaken by a later one changes nothing.
var replaceTraceSQL = `
WITH old AS (
  SELECT tlids, layers, held_at IS NOT NULL AS held FROM traces
  WHERE canvas_id = $1 AND trace_id = $2
), up AS (
  INSERT INTO traces (canvas_id, trace_id, root_tlid, tlids, ts, generation, custom_time, layers)
  VALUES ($1, $2, $3, $4, $5, $6, $7, 0)
  ON CONFLICT (canvas_id, trace_id) DO UPDATE SET
    root_tlid = EXCLUDED.root_tlid, tlids = EXCLUDED.tlids, ts = EXCLUDED.ts,
    generation = EXCLUDED.generation, custom_time = EXCLUDED.custom_time, layers = 0
  WHERE traces.generation < EXCLUDED.generation
  RETURNING 1
), dt AS (
  DELETE FROM trace_tlids tt
  USING old, unnest(old.tlids) AS u(tlid)
  WHERE EXISTS (SELECT FROM up)
    AND tt.canvas_id = $1 AND tt.tlid = u.tlid AND tt.trace_id = $2
    AND u.tlid <> ALL ($4::bigint[])
), it AS (
  INSERT INTO trace_tlids (canvas_id, tlid, trace_id, ts, root_tlid, held)
  SELECT $1, u.tlid, $2, $5, $3, COALESCE((SELECT held FROM old), false)
  FROM unnest($4::bigint[]) AS u(tlid)
  WHERE EXISTS (SELECT FROM up)
  ON CONFLICT (canvas_id, tlid, trace_id) DO UPDATE SET ts = EXCLUDED.ts, root_tlid = EXCLUDED.root_tlid
), tl AS (
  ` + upsertToplevels("unnest($4::bigint[])", "$7", "EXISTS (SELECT FROM up)") + `
), due AS (
  -- A toplevel the trace no longer touches lost a keeper: its next newest
  -- trace, never renewed, may be older than renew_after says. GC looks at
  -- it on its next pass.
  UPDATE toplevels SET renew_after = 'epoch'
  FROM old, unnest(old.tlids) AS u(tlid)
  WHERE EXISTS (SELECT FROM up) AND toplevels.canvas_id = $1 AND toplevels.tlid = u.tlid
    AND u.tlid <> ALL ($4::bigint[])
)
SELECT EXISTS (SELECT FROM up), COALESCE((SELECT layers FROM old), 0)`

// ReplaceTrace points the index rows of r.ID at a new object generation
// (the "execute handler" replace) in one round trip: the traces row gets
// r's root, tlids, timestamp, generation and customTime with layers reset to
// 0 (inserted if the trace was not indexed); trace_tlids rows of toplevels
// the new trace no longer touches are removed and the others added or
// updated; toplevels not yet known are added with renew_after =
// r.CustomTime. Rows that already describe r.Generation or a newer
// generation are left alone (replaced false), so index writes of two
// replaces that arrive out of order settle on the newer object, and the
// overwrite's deletion notification (which names the older generation)
// cannot remove them. oldLayers is the layer count of the rows before the
// change: the caller deletes those layer objects. Errors wrap
// traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) ReplaceTrace(ctx context.Context, r traces.Record) (replaced bool, oldLayers int, err error) {
	tlids := tlidArray(r.RootTLID, r.TLIDs)
	b := &pgx.Batch{}
	b.Queue(lockTraceSQL, [16]byte(r.Canvas), [16]byte(r.ID))
	var layers int32
	b.Queue(replaceTraceSQL, [16]byte(r.Canvas), [16]byte(r.ID), int64(r.RootTLID), tlids,
		r.Timestamp, r.Generation, r.CustomTime).QueryRow(func(row pgx.Row) error {
		return row.Scan(&replaced, &layers)
	})
	if err := db.pool.SendBatch(ctx, b).Close(); err != nil {
		return false, 0, fmt.Errorf("replace trace %s/%s: %w", r.Canvas, r.ID, translate(err))
	}
	return replaced, int(layers), nil
}

// addLayerSQL records layer $4 of a trace whose rows describe generation $3:
// layers only grows (two concurrent adds may commit in either order), the
// tlids array becomes the sorted union, and the new toplevels get
// trace_tlids and toplevels rows. The last column tells a replaced trace
// (another generation) from a missing one (NULL).
var addLayerSQL = `
WITH up AS (
  UPDATE traces SET layers = GREATEST(layers, $4),
    tlids = ARRAY(SELECT DISTINCT x.tlid FROM unnest(tlids || $5::bigint[]) AS x(tlid) ORDER BY x.tlid)
  WHERE canvas_id = $1 AND trace_id = $2 AND generation = $3
  RETURNING ts, root_tlid, held_at IS NOT NULL AS held, custom_time
), it AS (
  INSERT INTO trace_tlids (canvas_id, tlid, trace_id, ts, root_tlid, held)
  SELECT $1, u.tlid, $2, up.ts, up.root_tlid, up.held FROM up, unnest($5::bigint[]) AS u(tlid)
  ON CONFLICT DO NOTHING
), tl AS (
  -- The trace may become a keeper of a new toplevel however old it is: the
  -- toplevel is due by the trace's customTime, not the layer's.
  ` + upsertToplevels("up, unnest($5::bigint[])", "up.custom_time", "true") + `
)
SELECT EXISTS (SELECT FROM up), (SELECT generation FROM traces WHERE canvas_id = $1 AND trace_id = $2),
  COALESCE((SELECT held FROM up), false)`

// AddLayer records layer n of a trace in one round trip, if its rows still
// describe generation (the object the layer was added to): layers becomes
// max(layers, n), tlids the union with the layer's, and each new toplevel
// gets its trace_tlids row, and its toplevels row a renew_after no later
// than the trace's customTime (the trace may be the toplevel's keeper). A trace not indexed wraps traces.ErrNotFound; one
// whose rows describe another generation (it was replaced meanwhile) wraps
// traces.ErrPreconditionFailed. Errors wrap traces.ErrUnavailable when the
// server cannot be reached. Safe for concurrent use.
func (db *DB) AddLayer(ctx context.Context, c traces.CanvasID, id traces.TraceID, generation int64, n int, tlids []traces.TLID) (held bool, err error) {
	a := make([]int64, len(tlids))
	for i, t := range tlids {
		a[i] = int64(t)
	}
	slices.Sort(a) // same lock order as PutTrace: no deadlocks between them
	a = slices.Compact(a)
	var (
		ok  bool
		gen *int64
	)
	err = db.pool.QueryRow(ctx, addLayerSQL, [16]byte(c), [16]byte(id), generation, int32(n), a).Scan(&ok, &gen, &held)
	switch {
	case err != nil:
		return false, fmt.Errorf("add layer %d to %s/%s: %w", n, c, id, translate(err))
	case ok:
		return held, nil
	case gen == nil:
		return false, fmt.Errorf("add layer %d to %s/%s: trace not indexed: %w", n, c, id, traces.ErrNotFound)
	}
	return false, fmt.Errorf("add layer %d to %s/%s: the trace was replaced (generation %d, not %d): %w",
		n, c, id, *gen, generation, traces.ErrPreconditionFailed)
}

const forgetToplevelSQL = `
INSERT INTO toplevels (canvas_id, tlid, renew_after, deleted_at) VALUES ($1, $2, $3, $3)
ON CONFLICT (canvas_id, tlid) DO UPDATE SET deleted_at = COALESCE(toplevels.deleted_at, EXCLUDED.deleted_at)`

// ForgetToplevel marks a toplevel deleted at time at (the editor deleted the
// handler or function), inserting its row if GC never saw it: GC then stops
// keeping its latest traces, which expire by the normal policy. A toplevel
// already forgotten keeps its first deleted_at, so a repeat is harmless.
// Errors wrap traces.ErrUnavailable when the server cannot be reached. Safe
// for concurrent use.
func (db *DB) ForgetToplevel(ctx context.Context, c traces.CanvasID, tlid traces.TLID, at time.Time) error {
	if _, err := db.pool.Exec(ctx, forgetToplevelSQL, [16]byte(c), int64(tlid), at); err != nil {
		return fmt.Errorf("forget toplevel %s/%d: %w", c, tlid, translate(err))
	}
	return nil
}
