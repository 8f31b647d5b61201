package index

import (
	"context"
	"fmt"
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

// lockTraceToplevelsSQL then locks, in tlid order (see lockToplevelsSQL),
// the existing toplevels rows replaceTraceSQL writes: those of the trace's
// old tlids (dropped ones are made due) and of its new ones ($3).
const lockTraceToplevelsSQL = `
SELECT FROM toplevels WHERE canvas_id = $1 AND tlid IN (
  SELECT unnest(tlids) FROM traces WHERE canvas_id = $1 AND trace_id = $2
  UNION SELECT unnest($3::bigint[]))
ORDER BY tlid FOR UPDATE`

// replaceTraceSQL points a trace's rows at a new object generation: the
// traces row (insert or update, layers reset to 0, the hold cleared if $8),
// trace_tlids rows for toplevels the new trace no longer touches removed,
// the others upserted, toplevels linked. Only a newer generation may
// replace the row, so a replace whose index write is overtaken by a later
// one changes nothing. Nothing is written into a deleted canvas.
var replaceTraceSQL = `
WITH old AS (
  SELECT tlids, layers, held_at IS NOT NULL AND NOT $8 AS held FROM traces
  WHERE canvas_id = $1 AND trace_id = $2
), up AS (
  INSERT INTO traces (canvas_id, trace_id, root_tlid, tlids, ts, generation, custom_time, layers)
  SELECT $1, $2, $3, $4, $5, $6, $7, 0 WHERE ` + notDeleted + `
  ON CONFLICT (canvas_id, trace_id) DO UPDATE SET
    root_tlid = EXCLUDED.root_tlid, tlids = EXCLUDED.tlids, ts = EXCLUDED.ts,
    generation = EXCLUDED.generation, custom_time = EXCLUDED.custom_time,
    held_at = CASE WHEN $8 THEN NULL ELSE traces.held_at END,
    hold_reason = CASE WHEN $8 THEN NULL ELSE traces.hold_reason END,
    hold_until = CASE WHEN $8 THEN NULL ELSE traces.hold_until END,
    held_by = CASE WHEN $8 THEN NULL ELSE traces.held_by END,
    layers = CASE WHEN traces.generation = EXCLUDED.generation THEN traces.layers ELSE 0 END
  WHERE traces.generation < EXCLUDED.generation OR ($10 AND traces.generation = EXCLUDED.generation)
  RETURNING 1
), k AS MATERIALIZED (
  -- the keys of the rows of toplevels the trace no longer touches (see removeSQL)
  SELECT * FROM (` + traceKeys("old") + `) AS k WHERE k.tlid <> ALL ($4::bigint[]) AND EXISTS (SELECT FROM up)
), dt AS (
  DELETE FROM trace_tlids tt USING k
  WHERE tt.canvas_id = k.canvas_id AND tt.tlid = k.tlid AND tt.trace_id = k.trace_id
), it AS (
  INSERT INTO trace_tlids (canvas_id, tlid, trace_id, ts, root_tlid, held)
  SELECT $1, u.tlid, $2, $5, $3, COALESCE((SELECT held FROM old), false)
  FROM unnest($4::bigint[]) AS u(tlid)
  WHERE EXISTS (SELECT FROM up)
  ON CONFLICT (canvas_id, tlid, trace_id) DO UPDATE SET ts = EXCLUDED.ts, root_tlid = EXCLUDED.root_tlid, held = EXCLUDED.held
), tl AS (
  ` + upsertToplevels("unnest($4::bigint[])", "$7::timestamptz", "$5::timestamptz", "$9", "EXISTS (SELECT FROM up)") + `
), dropped AS (
  -- A toplevel the trace no longer touches lost a keeper: its next newest
  -- trace, never renewed, may be older than renew_after says. It is due at
  -- once; rev tells a GC pass that read it before that its keepers changed.
  UPDATE toplevels SET renew_after = '-infinity', rev = toplevels.rev + 1
  FROM old, unnest(old.tlids) AS u(tlid)
  WHERE EXISTS (SELECT FROM up) AND toplevels.canvas_id = $1 AND toplevels.tlid = u.tlid
    AND u.tlid <> ALL ($4::bigint[])
  RETURNING toplevels.tlid
)
SELECT EXISTS (SELECT FROM up), COALESCE((SELECT layers FROM old), 0),
  ARRAY(SELECT tlid FROM tl WHERE due), ARRAY(SELECT tlid FROM dropped), NOT ` + notDeleted

// endOpSQL removes an operation's token (see BeginOp) from a trace.
const endOpSQL = `UPDATE traces SET pending = array_remove(pending, $3) WHERE canvas_id = $1 AND trace_id = $2 AND $3 = ANY (pending)`

// Replaced is the outcome of ReplaceTrace.
type Replaced struct {
	// Replaced is false if the rows already described the generation or a
	// newer one (nothing changed).
	Replaced bool
	// OldLayers is the layer count of the rows before the change: the
	// caller deletes those layer objects.
	OldLayers int
	// Due are the toplevels whose latest traces may now include one that GC
	// has not renewed: those the trace no longer touches (a keeper left),
	// and those revived or linked to a trace that is not fresh (PutTrace).
	Due []traces.TLID
	// CanvasDeleted is set when the canvas was deleted (DeleteCanvas): no
	// row of it is written, whatever the generation (Replaced false).
	CanvasDeleted bool
}

// ReplaceTrace points the index rows of r.ID at a new object generation
// (the "execute handler" replace) in one round trip: the traces row gets
// r's root, tlids, timestamp, generation and customTime with layers reset to
// 0 (inserted if the trace was not indexed, unless its canvas was deleted);
// trace_tlids rows of toplevels the new trace no longer touches are removed
// and those toplevels made due; the others are added or updated and linked
// (upsertToplevels, with now the writer's clock). Rows that already
// describe r.Generation or a newer generation are left alone (Replaced
// false), so index writes of two replaces that arrive out of order settle
// on the newer object, and the overwrite's deletion notification (which
// names the older generation) cannot remove them. token, if not zero, is
// the replace's operation token (BeginOp), removed in the same round trip
// whatever the outcome. Errors wrap traces.ErrUnavailable when the server
// cannot be reached. Safe for concurrent use.
func (db *DB) ReplaceTrace(ctx context.Context, r traces.Record, now time.Time, token Token) (Replaced, error) {
	out, err := db.replaceWith(ctx, r, now, false, token)
	if err != nil {
		return Replaced{}, fmt.Errorf("replace trace %s/%s: %w", r.Canvas, r.ID, err)
	}
	return out, nil
}

func (db *DB) replace(ctx context.Context, r traces.Record, now time.Time, clearHold bool) (Replaced, error) {
	return db.replaceWith(ctx, r, now, clearHold, Token{})
}

func (db *DB) replaceWith(ctx context.Context, r traces.Record, now time.Time, clearHold bool, token Token) (Replaced, error) {
	return db.rewrite(ctx, r, now, clearHold, false, func(b *pgx.Batch) {
		if !token.IsZero() {
			b.Queue(endOpSQL, [16]byte(r.Canvas), [16]byte(r.ID), token.t)
		}
	})
}

// rewrite runs replaceTraceSQL after the row lock, then whatever more
// adds to the same batch (one round trip, one implicit transaction).
// reindex lets rows of the same generation be rewritten too.
func (db *DB) rewrite(ctx context.Context, r traces.Record, now time.Time, clearHold, reindex bool, more func(*pgx.Batch)) (Replaced, error) {
	tlids := tlidArray(r.RootTLID, r.TLIDs)
	var (
		out             Replaced
		layers          int32
		linked, dropped []int64
	)
	err := db.sendBatch(ctx, func() *pgx.Batch {
		b := &pgx.Batch{}
		b.Queue(lockTraceSQL, [16]byte(r.Canvas), [16]byte(r.ID))
		b.Queue(lockTraceToplevelsSQL, [16]byte(r.Canvas), [16]byte(r.ID), tlids)
		b.Queue(replaceTraceSQL, [16]byte(r.Canvas), [16]byte(r.ID), int64(r.RootTLID), tlids,
			r.Timestamp, r.Generation, r.CustomTime, clearHold, now, reindex).QueryRow(func(row pgx.Row) error {
			return row.Scan(&out.Replaced, &layers, &linked, &dropped, &out.CanvasDeleted)
		})
		more(b)
		return b
	})
	if err != nil {
		return Replaced{}, translate(err)
	}
	out.OldLayers, out.Due = int(layers), toTLIDs(append(linked, dropped...))
	return out, nil
}

const forgetToplevelSQL = `
INSERT INTO toplevels (canvas_id, tlid, renew_after, deleted_at) VALUES ($1, $2, $3, $3)
ON CONFLICT (canvas_id, tlid) DO UPDATE SET deleted_at = GREATEST(toplevels.deleted_at, EXCLUDED.deleted_at),
  rev = toplevels.rev + 1`

// ForgetToplevel marks a toplevel deleted at time at (the editor deleted the
// handler or function), inserting its row if GC never saw it: GC then stops
// keeping its latest traces, which expire by the normal policy. A repeat
// moves deleted_at to the later time (GREATEST: a retry that lost the race
// to the first changes nothing): the editor deleted the toplevel again
// after every execution that ran before it, so none of those may revive
// it, however late its trace arrives.
// The row stays for good, a tombstone: a trace that names the toplevel
// later (a layer added to an old trace, an execution that was in flight)
// revives it only if its own timestamp is after the deletion
// (upsertToplevels), and without the row it would revive it whatever its
// timestamp. GC never reads a deleted toplevel's keepers, so a tombstone
// costs one small row.
// Errors wrap traces.ErrUnavailable when the server cannot be reached. Safe
// for concurrent use.
func (db *DB) ForgetToplevel(ctx context.Context, c traces.CanvasID, tlid traces.TLID, at time.Time) error {
	if _, err := db.pool.Exec(ctx, forgetToplevelSQL, [16]byte(c), int64(tlid), at); err != nil {
		return fmt.Errorf("forget toplevel %s/%d: %w", c, tlid, translate(err))
	}
	return nil
}
