package index

import (
	"context"
	"fmt"

	"github.com/tracegw/tracegw/internal/traces"
)

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
