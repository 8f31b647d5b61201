package index

import (
	"context"
	"fmt"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

const holdsSQL = `SELECT trace_id, COALESCE(hold_reason, ''), held_at, hold_until, COALESCE(held_by, '')
FROM traces WHERE canvas_id = $1 AND held_at IS NOT NULL ORDER BY held_at DESC, trace_id DESC`

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
		id    [16]byte
		until *time.Time
	)
	for rows.Next() {
		var h Hold
		if err := rows.Scan(&id, &h.Reason, &h.HeldAt, &until, &h.By); err != nil {
			return nil, fmt.Errorf("holds of %s: %w", canvas, translate(err))
		}
		h.ID, h.HeldAt = traces.TraceID(id), h.HeldAt.UTC()
		if until != nil {
			h.Until = until.UTC()
		}
		out = append(out, h)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("holds of %s: %w", canvas, translate(err))
	}
	return out, nil
}

// EndedHold is a hold whose end has come.
type EndedHold struct {
	Canvas traces.CanvasID
	ID     traces.TraceID
	Until  time.Time
}

// endedHoldsSQL reads traces_hold_until, earliest end first.
const endedHoldsSQL = `
SELECT canvas_id, trace_id, hold_until FROM traces
WHERE hold_until <= $1 ORDER BY hold_until LIMIT $2`

// EndedHolds returns up to limit holds, across canvases, whose end is at or
// before now, earliest first. It reads only the ended part of the partial
// index traces_hold_until, so its cost follows the number of ended holds.
// Errors wrap traces.ErrUnavailable when the server cannot be reached. Safe
// for concurrent use.
func (db *DB) EndedHolds(ctx context.Context, now time.Time, limit int) ([]EndedHold, error) {
	rows, err := db.pool.Query(ctx, endedHoldsSQL, now, int64(limit))
	if err != nil {
		return nil, fmt.Errorf("ended holds: %w", translate(err))
	}
	defer rows.Close()
	var (
		out   []EndedHold
		c, id [16]byte
		until time.Time
	)
	for rows.Next() {
		if err := rows.Scan(&c, &id, &until); err != nil {
			return nil, fmt.Errorf("ended holds: %w", translate(err))
		}
		out = append(out, EndedHold{Canvas: c, ID: id, Until: until.UTC()})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("ended holds: %w", translate(err))
	}
	return out, nil
}
