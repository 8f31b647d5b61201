package index

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// putTraceSQL writes one trace's rows in one statement (one round trip, one
// implicit transaction). The trace_tlids and toplevels inserts run only if the
// traces row was new, so a retry changes nothing. A toplevel that already
// exists keeps its renew_after unless this trace is older (upsertToplevels).
var putTraceSQL = `
WITH t AS (
  INSERT INTO traces (canvas_id, trace_id, root_tlid, tlids, ts, generation, custom_time, layers)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
  ON CONFLICT (canvas_id, trace_id) DO NOTHING
  RETURNING 1
), tt AS (
  INSERT INTO trace_tlids (canvas_id, tlid, trace_id, ts, root_tlid)
  SELECT $1, u.tlid, $2, $5, $3 FROM unnest($4::bigint[]) AS u(tlid)
  WHERE EXISTS (SELECT FROM t)
  ON CONFLICT DO NOTHING
), tl AS (
  ` + upsertToplevels("unnest($4::bigint[])", "$7", "EXISTS (SELECT FROM t)") + `
)
SELECT EXISTS (SELECT FROM t)`

// upsertToplevels is the toplevels part of every index write that links a
// trace to toplevels (save, replace, layer): each toplevel's renew_after must
// stay at or below the customTime of every trace that may be its keeper, so
// it is lowered to ct when ct is older (a retried save of an old object, a
// layer linking an old trace to a new toplevel), and a toplevel the editor
// deleted is live again once a trace newer than its deletion arrives. The
// common case, a fresh trace of a known live toplevel, is filtered out
// before the upsert, so hot handlers' saves take no row lock here.
func upsertToplevels(tlids, ct, cond string) string {
	return `INSERT INTO toplevels (canvas_id, tlid, renew_after)
  SELECT $1, u.tlid, ` + ct + ` FROM ` + tlids + ` AS u(tlid)
  WHERE ` + cond + ` AND NOT EXISTS (
    SELECT FROM toplevels x WHERE x.canvas_id = $1 AND x.tlid = u.tlid
      AND x.renew_after <= ` + ct + ` AND x.deleted_at IS NULL)
  ON CONFLICT (canvas_id, tlid) DO UPDATE SET
    renew_after = LEAST(toplevels.renew_after, EXCLUDED.renew_after),
    deleted_at = CASE WHEN toplevels.deleted_at < EXCLUDED.renew_after THEN NULL ELSE toplevels.deleted_at END`
}

// PutTrace indexes one trace in one round trip: its traces row, one
// trace_tlids row per toplevel it touched (r.RootTLID is added to r.TLIDs if
// missing; duplicates are dropped) and a toplevels row for each toplevel not
// yet known, with renew_after = r.CustomTime. r.Held is ignored: a new trace
// is not held. created is false if the trace was already indexed, in which
// case nothing changes (a retry is safe, even with different contents).
// Errors wrap traces.ErrUnavailable when the server cannot be reached. Safe
// for concurrent use.
func (db *DB) PutTrace(ctx context.Context, r traces.Record) (created bool, err error) {
	tlids := tlidArray(r.RootTLID, r.TLIDs)
	err = db.pool.QueryRow(ctx, putTraceSQL,
		[16]byte(r.Canvas), [16]byte(r.ID), int64(r.RootTLID), tlids,
		r.Timestamp, r.Generation, r.CustomTime, int32(r.Layers),
	).Scan(&created)
	if err != nil {
		return false, fmt.Errorf("put trace %s/%s: %w", r.Canvas, r.ID, translate(err))
	}
	return created, nil
}

// tlidArray returns root and tlids as sorted, distinct int64 bit patterns.
// Sorted, so that concurrent saves touching the same new toplevels insert
// them in the same order and cannot deadlock.
func tlidArray(root traces.TLID, tlids []traces.TLID) []int64 {
	a := make([]int64, 0, len(tlids)+1)
	a = append(a, int64(root))
	for _, t := range tlids {
		a = append(a, int64(t))
	}
	slices.Sort(a)
	return slices.Compact(a)
}

const recordColumns = `canvas_id, trace_id, root_tlid, tlids, ts, generation, custom_time, layers, held_at IS NOT NULL`

const getSQL = `SELECT ` + recordColumns + ` FROM traces WHERE canvas_id = $1 AND trace_id = $2`

// findSQL uses traces_by_id. A trace ID is unique in practice (UUIDv7 with 74
// random bits); should two canvases share one, the lowest canvas ID wins.
const findSQL = `SELECT ` + recordColumns + ` FROM traces WHERE trace_id = $1 ORDER BY canvas_id LIMIT 1`

// Get returns the indexed record of one trace. The error wraps
// traces.ErrNotFound if the trace is not indexed, traces.ErrUnavailable if
// the server cannot be reached. Safe for concurrent use.
func (db *DB) Get(ctx context.Context, canvas traces.CanvasID, id traces.TraceID) (traces.Record, error) {
	r, err := scanRecord(db.pool.QueryRow(ctx, getSQL, [16]byte(canvas), [16]byte(id)))
	if err != nil {
		return traces.Record{}, fmt.Errorf("get trace %s/%s: %w", canvas, id, translate(err))
	}
	return r, nil
}

// Find returns the indexed record of a trace by its ID alone, whatever its
// canvas (admin support lookups). Errors as for Get.
func (db *DB) Find(ctx context.Context, id traces.TraceID) (traces.Record, error) {
	r, err := scanRecord(db.pool.QueryRow(ctx, findSQL, [16]byte(id)))
	if err != nil {
		return traces.Record{}, fmt.Errorf("find trace %s: %w", id, translate(err))
	}
	return r, nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanRecord(row rowScanner) (traces.Record, error) {
	var (
		r            traces.Record
		canvas, id   [16]byte
		root         int64
		tlids        []int64
		ts, customTS time.Time
		layers       int32
	)
	if err := row.Scan(&canvas, &id, &root, &tlids, &ts, &r.Generation, &customTS, &layers, &r.Held); err != nil {
		return traces.Record{}, err
	}
	r.Canvas, r.ID, r.RootTLID = traces.CanvasID(canvas), traces.TraceID(id), traces.TLID(root)
	r.TLIDs = make([]traces.TLID, len(tlids))
	for i, t := range tlids {
		r.TLIDs[i] = traces.TLID(t)
	}
	r.Timestamp, r.CustomTime, r.Layers = ts.UTC(), customTS.UTC(), int(layers)
	return r, nil
}

// removeSQL deletes a trace's rows if they describe generation $3 or older:
// the traces row, then its trace_tlids rows by primary key, from the row's
// own tlids array. One statement, so one round trip and all or nothing.
const removeSQL = `
WITH d AS (
  DELETE FROM traces
  WHERE canvas_id = $1 AND trace_id = $2 AND generation <= $3
  RETURNING tlids
), dt AS (
  DELETE FROM trace_tlids tt
  USING d, unnest(d.tlids) AS u(tlid)
  WHERE tt.canvas_id = $1 AND tt.tlid = u.tlid AND tt.trace_id = $2
)
SELECT count(*) FROM d`

// Remove deletes the index rows of one trace if they describe maxGeneration
// or an older generation: a deletion notification or a failed read names the
// generation that is gone, and rows already describing a newer object must
// survive it. removed is false if there was nothing to delete (gone already,
// or newer); that is not an error. The toplevels rows stay: GC owns them.
// Errors wrap traces.ErrUnavailable when the server cannot be reached. Safe
// for concurrent use.
func (db *DB) Remove(ctx context.Context, canvas traces.CanvasID, id traces.TraceID, maxGeneration int64) (removed bool, err error) {
	var n int64
	if err := db.pool.QueryRow(ctx, removeSQL, [16]byte(canvas), [16]byte(id), maxGeneration).Scan(&n); err != nil {
		return false, fmt.Errorf("remove trace %s/%s: %w", canvas, id, translate(err))
	}
	return n > 0, nil
}

// Deletion names index rows to remove: the trace's rows go if they describe
// Generation or an older generation.
type Deletion struct {
	Canvas     traces.CanvasID
	ID         traces.TraceID
	Generation int64
}

// RemoveMany is Remove for a batch, in one statement (one round trip, all or
// nothing): RemoveManyWithLayers without the list. Rows already gone or
// newer than the named generation are skipped, not errors, so a redelivered
// batch is harmless; removed counts the traces whose rows were deleted.
// Errors as for RemoveManyWithLayers. Safe for concurrent use.
func (db *DB) RemoveMany(ctx context.Context, ds []Deletion) (removed int, err error) {
	rs, err := db.RemoveManyWithLayers(ctx, ds)
	return len(rs), err
}
