package index

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// Timing bounds of the toplevels bookkeeping. GC (internal/ttl) sets a
// toplevel's renew_after at most RenewSlack before its own clock, so a
// trace whose customTime is at least FreshWindow old at its index write
// need not take the toplevel's row lock: any GC pass that could not see the
// link ran after the trace's customTime minus RenewSlack. RenewSlack must
// cover FreshWindow, one statement's duration and the clock skew between
// replicas; ten minutes against five leaves minutes for the last two.
const (
	FreshWindow = 5 * time.Minute
	RenewSlack  = 10 * time.Minute
)

// ReviveGrace is how much later than a toplevel's deletion a trace's own
// timestamp must be to make the toplevel live again. The deletion is
// stamped by the gateway's clock and the trace by the executor's, and an
// execution in flight when the handler was deleted must not revive it.
const ReviveGrace = 5 * time.Minute

// upsertToplevels is the toplevels part of every index write that links a
// trace to toplevels (save, replace, layer, reindex). The invariant it
// keeps: a live toplevel's renew_after is at or below the customTime of
// every trace that may be its keeper. So renew_after is lowered to ct when
// ct is older; a deleted toplevel comes back to life (and is due at once,
// as its latest traces were not renewed while it was deleted) when the
// trace's own timestamp ts is more than ReviveGrace after the deletion; and
// every such change bumps rev, which GC compares before it raises
// renew_after. The one case that takes no row lock is a fresh trace (ct
// within FreshWindow of now, $9) of a known live toplevel that is not
// marked empty: see FreshWindow. tlids names a set of rows u(tlid), now the
// parameter holding the writer's clock; cond gates the whole insert. It
// returns the tlids whose row it wrote, with due set for those whose
// latest traces may now include one GC has not renewed (revived, or linked
// to a trace that is not fresh).
func upsertToplevels(tlids, ct, ts, now, cond string) string {
	return `INSERT INTO toplevels (canvas_id, tlid, renew_after)
  SELECT $1, u.tlid, ` + ct + ` FROM ` + tlids + ` AS u(tlid)
  WHERE ` + cond + ` AND NOT (` + ct + ` >= ` + now + `::timestamptz - ` + interval(FreshWindow) + ` AND EXISTS (
    SELECT FROM toplevels x WHERE x.canvas_id = $1 AND x.tlid = u.tlid
      AND x.renew_after <= ` + ct + ` AND x.deleted_at IS NULL AND x.empty_since IS NULL))
  ON CONFLICT (canvas_id, tlid) DO UPDATE SET
    renew_after = CASE WHEN toplevels.deleted_at < ` + ts + ` - ` + interval(ReviveGrace) + ` THEN '-infinity'
                       ELSE LEAST(toplevels.renew_after, EXCLUDED.renew_after) END,
    deleted_at = CASE WHEN toplevels.deleted_at < ` + ts + ` - ` + interval(ReviveGrace) + ` THEN NULL
                      ELSE toplevels.deleted_at END,
    empty_since = NULL,
    rev = toplevels.rev + 1
  RETURNING tlid, renew_after = '-infinity' OR ` + ct + ` < ` + now + `::timestamptz - ` + interval(FreshWindow) + ` AS due`
}

// traceKeys are the trace_tlids keys of trace $2 of canvas $1 for the
// tlids of the row of rel (a CTE with a tlids column; see removeSQL).
func traceKeys(rel string) string {
	return `SELECT $1::uuid AS canvas_id, u.tlid, $2::uuid AS trace_id FROM ` + rel + `, unnest(` + rel + `.tlids) AS u(tlid)`
}

// lockToplevelsSQL locks the existing toplevels rows $2 of canvas $1 in tlid
// order. Every writer of several toplevels rows takes them in that order
// before it writes them, the statement that follows it in the same batch
// (one implicit transaction): the order a row is reached in by an UPDATE's
// join or a statement's CTEs is the plan's, so without it GC's verdicts, a
// replace's upsert and its dropped keepers, and a keep change lock the
// same rows in different orders and PostgreSQL breaks the cycle with 40P01.
const lockToplevelsSQL = `SELECT FROM toplevels WHERE canvas_id = $1 AND tlid = ANY ($2::bigint[]) ORDER BY tlid FOR UPDATE`

// interval renders d as a PostgreSQL interval literal.
func interval(d time.Duration) string {
	return fmt.Sprintf("interval '%d microseconds'", d.Microseconds())
}

// notDeleted is true unless canvas $1 was deleted (DeleteCanvas).
const notDeleted = `NOT EXISTS (SELECT FROM deleted_canvases WHERE canvas_id = $1)`

// putTraceSQL writes one trace's rows in one statement (one round trip, one
// implicit transaction). The trace_tlids and toplevels inserts run only if
// the traces row was new, so a retry changes nothing. Rows of an older
// generation (a trace saved again after its object expired, before the
// deletion notification arrived) are left to PutTrace's second step.
var putTraceSQL = `
WITH t AS (
  INSERT INTO traces (canvas_id, trace_id, root_tlid, tlids, ts, generation, custom_time, layers)
  SELECT $1, $2, $3, $4, $5, $6, $7, $8 WHERE ` + notDeleted + `
  ON CONFLICT (canvas_id, trace_id) DO NOTHING
  RETURNING 1
), tt AS (
  INSERT INTO trace_tlids (canvas_id, tlid, trace_id, ts, root_tlid)
  SELECT $1, u.tlid, $2, $5, $3 FROM unnest($4::bigint[]) AS u(tlid)
  WHERE EXISTS (SELECT FROM t)
  ON CONFLICT DO NOTHING
), tl AS (
  ` + upsertToplevels("unnest($4::bigint[])", "$7::timestamptz", "$5::timestamptz", "$9", "EXISTS (SELECT FROM t)") + `
)
SELECT EXISTS (SELECT FROM t), NOT ` + notDeleted + `,
  (SELECT generation FROM traces WHERE canvas_id = $1 AND trace_id = $2),
  ARRAY(SELECT tlid FROM tl WHERE due)`

// Put is the outcome of PutTrace.
type Put struct {
	// Created is true if the rows were written: the trace was not indexed,
	// or its rows described an older generation, which they now replace.
	Created bool
	// Due are the toplevels whose latest traces may now include one that GC
	// has not renewed (revived, or linked to a trace that is not fresh).
	Due []traces.TLID
}

// PutTrace indexes one trace: its traces row, one trace_tlids row per
// toplevel it touched (r.RootTLID is added to r.TLIDs if missing;
// duplicates are dropped) and the toplevels bookkeeping (upsertToplevels;
// now is the writer's clock, which decides whether r.CustomTime is fresh).
// r.Held is ignored: a new trace is not held.
// Rows that already describe r.Generation or a newer one are left alone
// (Created false): a retry is harmless. Rows of an older generation are
// replaced, in a second round trip, as ReplaceTrace does but with the hold
// cleared (the object they describe is gone). A deleted canvas wraps
// traces.ErrNotFound and writes nothing. Errors wrap traces.ErrUnavailable
// when the server cannot be reached. Safe for concurrent use.
func (db *DB) PutTrace(ctx context.Context, r traces.Record, now time.Time) (Put, error) {
	tlids := tlidArray(r.RootTLID, r.TLIDs)
	var (
		p       Put
		deleted bool
		gen     *int64
		linked  []int64
	)
	err := db.pool.QueryRow(ctx, putTraceSQL,
		[16]byte(r.Canvas), [16]byte(r.ID), int64(r.RootTLID), tlids,
		r.Timestamp, r.Generation, r.CustomTime, int32(r.Layers), now,
	).Scan(&p.Created, &deleted, &gen, &linked)
	switch {
	case err != nil:
		return Put{}, fmt.Errorf("put trace %s/%s: %w", r.Canvas, r.ID, translate(err))
	case deleted:
		return Put{}, fmt.Errorf("put trace %s/%s: the canvas was deleted: %w", r.Canvas, r.ID, traces.ErrNotFound)
	case !p.Created && gen != nil && *gen < r.Generation:
		rep, err := db.replace(ctx, r, now, true)
		if err != nil {
			return Put{}, fmt.Errorf("put trace %s/%s: %w", r.Canvas, r.ID, err)
		}
		return Put{Created: rep.Replaced, Due: rep.Due}, nil
	}
	p.Due = toTLIDs(linked)
	return p, nil
}

func toTLIDs(a []int64) []traces.TLID {
	out := make([]traces.TLID, len(a))
	for i, t := range a {
		out[i] = traces.TLID(t)
	}
	return out
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

// findSQL uses traces_by_id. A generated trace ID is unique in practice
// (UUIDv7 with 74 random bits), but callers may supply their own, so
// several canvases can hold the same one: all of them are returned, by
// canvas ID.
const findSQL = `SELECT ` + recordColumns + ` FROM traces WHERE trace_id = $1 ORDER BY canvas_id LIMIT $2`

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

// Find returns the indexed records of a trace ID in every canvas that
// holds it, by canvas ID, at most limit of them (admin support lookups: a
// canvas must not hide another's trace of the same ID). None wraps
// traces.ErrNotFound; other errors as for Get. Safe for concurrent use.
func (db *DB) Find(ctx context.Context, id traces.TraceID, limit int) ([]traces.Record, error) {
	rows, err := db.pool.Query(ctx, findSQL, [16]byte(id), limit)
	if err != nil {
		return nil, fmt.Errorf("find trace %s: %w", id, translate(err))
	}
	defer rows.Close()
	var out []traces.Record
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return nil, fmt.Errorf("find trace %s: %w", id, translate(err))
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find trace %s: %w", id, translate(err))
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("find trace %s: %w", id, traces.ErrNotFound)
	}
	return out, nil
}

type rowScanner interface{ Scan(dest ...any) error }

func scanRecord(row rowScanner, extra ...any) (traces.Record, error) {
	var (
		r            traces.Record
		canvas, id   [16]byte
		root         int64
		tlids        []int64
		ts, customTS time.Time
		layers       int32
	)
	dest := append([]any{&canvas, &id, &root, &tlids, &ts, &r.Generation, &customTS, &layers, &r.Held}, extra...)
	if err := row.Scan(dest...); err != nil {
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
//
// Every statement that writes a trace's trace_tlids rows reaches them
// through its keys, a MATERIALIZED relation holding all three columns
// (traceKeys): given canvas_id and trace_id as constants, a plan may
// probe the primary key by those two alone, skipping tlid, and read every
// row of the canvas for each trace. It did, with statistics that had not
// caught up with a burst of saves (TestTraceRowsByWholeKey).
var removeSQL = `
WITH d AS (
  DELETE FROM traces
  WHERE canvas_id = $1 AND trace_id = $2 AND generation <= $3
  RETURNING tlids
), k AS MATERIALIZED (` + traceKeys("d") + `
), dt AS (
  DELETE FROM trace_tlids tt USING k
  WHERE tt.canvas_id = k.canvas_id AND tt.tlid = k.tlid AND tt.trace_id = k.trace_id
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
