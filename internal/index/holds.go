package index

import (
	"context"
	"fmt"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// Hold is a held trace as the index records it.
type Hold struct {
	ID     traces.TraceID
	Reason string    // "" when none was given
	HeldAt time.Time // when the trace was first held (since its last release)
}

// setHoldSQL marks one trace held in one statement (one round trip, all or
// nothing): its traces row, then its trace_tlids rows by primary key from the
// row's own tlids array, so listings show held from an index-only scan.
// held_at keeps the time of the first hold, so a retried or repeated hold
// does not move it; a non-empty reason replaces the recorded one.
const setHoldSQL = `
WITH t AS (
  UPDATE traces SET held_at = COALESCE(held_at, $3), hold_reason = COALESCE(NULLIF($4, ''), hold_reason)
  WHERE canvas_id = $1 AND trace_id = $2
  RETURNING tlids, held_at, hold_reason
), tt AS (
  UPDATE trace_tlids x SET held = true
  FROM t, unnest(t.tlids) AS u(tlid)
  WHERE x.canvas_id = $1 AND x.tlid = u.tlid AND x.trace_id = $2 AND NOT x.held
)
SELECT held_at, COALESCE(hold_reason, '') FROM t`

// SetHold records that a trace is held, with reason, in one round trip.
// heldAt is recorded only if the trace was not held yet, so repeating it is
// harmless; a non-empty reason replaces the recorded one, an empty one keeps
// it (a retry without a body loses nothing). It returns the hold as now
// recorded. The error wraps traces.ErrNotFound if the trace is not
// indexed, traces.ErrUnavailable if the server cannot be reached. Safe for
// concurrent use.
func (db *DB) SetHold(ctx context.Context, canvas traces.CanvasID, id traces.TraceID, reason string, heldAt time.Time) (Hold, error) {
	h := Hold{ID: id}
	if err := db.pool.QueryRow(ctx, setHoldSQL, [16]byte(canvas), [16]byte(id), heldAt, reason).Scan(&h.HeldAt, &h.Reason); err != nil {
		return Hold{}, fmt.Errorf("set hold %s/%s: %w", canvas, id, translate(err))
	}
	h.HeldAt = h.HeldAt.UTC()
	return h, nil
}

// clearHoldSQL is setHoldSQL's inverse. custom_time only moves forward
// (GREATEST ignores a NULL $3), so it stays a lower bound of the objects'.
const clearHoldSQL = `
WITH t AS (
  UPDATE traces SET held_at = NULL, hold_reason = NULL, custom_time = GREATEST(custom_time, $3)
  WHERE canvas_id = $1 AND trace_id = $2
  RETURNING tlids
), tt AS (
  UPDATE trace_tlids x SET held = false
  FROM t, unnest(t.tlids) AS u(tlid)
  WHERE x.canvas_id = $1 AND x.tlid = u.tlid AND x.trace_id = $2 AND x.held
)
SELECT count(*) FROM t`

// ClearHold records that a trace is no longer held, in one round trip, and
// moves its custom_time forward to customTime (the time the release set on
// its objects; zero leaves it). Clearing a trace that is not held is
// harmless. The error wraps traces.ErrNotFound if the trace is not indexed,
// traces.ErrUnavailable if the server cannot be reached. Safe for concurrent
// use.
func (db *DB) ClearHold(ctx context.Context, canvas traces.CanvasID, id traces.TraceID, customTime time.Time) error {
	var ct *time.Time
	if !customTime.IsZero() {
		ct = &customTime
	}
	var n int64
	if err := db.pool.QueryRow(ctx, clearHoldSQL, [16]byte(canvas), [16]byte(id), ct).Scan(&n); err != nil {
		return fmt.Errorf("clear hold %s/%s: %w", canvas, id, translate(err))
	}
	if n == 0 {
		return fmt.Errorf("clear hold %s/%s: %w", canvas, id, traces.ErrNotFound)
	}
	return nil
}

// heldCountSQL stops counting at $2: the quota check needs no more.
const heldCountSQL = `SELECT count(*) FROM (SELECT FROM traces WHERE canvas_id = $1 AND held_at IS NOT NULL LIMIT $2) AS h`

// HeldCount returns how many traces of the canvas are held, counting at most
// atMost. Errors wrap traces.ErrUnavailable when the server cannot be
// reached. Safe for concurrent use.
func (db *DB) HeldCount(ctx context.Context, canvas traces.CanvasID, atMost int) (int, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, heldCountSQL, [16]byte(canvas), int64(atMost)).Scan(&n); err != nil {
		return 0, fmt.Errorf("count holds of %s: %w", canvas, translate(err))
	}
	return int(n), nil
}

const holdsSQL = `SELECT trace_id, COALESCE(hold_reason, ''), held_at FROM traces WHERE canvas_id = $1 AND held_at IS NOT NULL ORDER BY held_at DESC, trace_id DESC`

// Holds returns the held traces of a canvas, most recently held first; an
// empty slice if there are none. Errors wrap traces.ErrUnavailable when the
// server cannot be reached. Safe for concurrent use.
func (db *DB) Holds(ctx context.Context, canvas traces.CanvasID) ([]Hold, error) {
	rows, err := db.pool.Query(ctx, holdsSQL, [16]byte(canvas))
	if err != nil {
		return nil, fmt.Errorf("holds of %s: %w", canvas, translate(err))
	}
	defer rows.Close()
	out := []Hold{}
	var (
		id [16]byte
		h  Hold
	)
	for rows.Next() {
		if err := rows.Scan(&id, &h.Reason, &h.HeldAt); err != nil {
			return nil, fmt.Errorf("holds of %s: %w", canvas, translate(err))
		}
		h.ID, h.HeldAt = traces.TraceID(id), h.HeldAt.UTC()
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("holds of %s: %w", canvas, translate(err))
	}
	return out, nil
}
