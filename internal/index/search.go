package index

import (
	"bytes"
	"context"
	"fmt"

	"github.com/tracegw/tracegw/internal/traces"
)

// Range is a search of one canvas's traces: trace IDs between Low and High
// (both inclusive, bytewise: UUIDv7s sort by their embedded time), newest
// first, at most Limit, and with TLID set only those that touched it.
type Range struct {
	Low, High traces.TraceID
	TLID      *traces.TLID
	Limit     int
}

// searchSQL is one backward range scan of traces' primary key (canvas_id,
// trace_id), each row judged. A test EXPLAINs this text.
var searchSQL = `WITH ` + keepCTE + `
SELECT x.trace_id, x.ts, x.root_tlid, x.held, ` + keptColumns + `
FROM (
  SELECT trace_id, ts, root_tlid, held_at IS NOT NULL AS held, custom_time, tlids FROM traces
  WHERE canvas_id = $1 AND trace_id BETWEEN $5 AND $6
  ORDER BY trace_id DESC LIMIT $7
) AS x
CROSS JOIN k ` + keptAny + `
ORDER BY x.trace_id DESC`

// searchTLIDSQL is one backward range scan of trace_tlids' primary key
// (canvas_id, tlid, trace_id), index-only, each row then joined to its
// traces row and judged. A test EXPLAINs this text.
var searchTLIDSQL = `WITH ` + keepCTE + `
SELECT x.trace_id, x.ts, x.root_tlid, x.held, ` + keptColumns + `
FROM ` + tlidSource("$8", "$5", "$6", "$7") + `
CROSS JOIN k ` + keptAny + `
ORDER BY x.trace_id DESC`

// Search lists the traces of canvas in q's range, newest first, each
// judged under r (see RecentKept), in one round trip: one index range scan
// whatever the canvas holds, so a page costs its rows. An empty range (Low
// after High) returns an empty slice without a query. q.Limit must be at
// least 1 (else the error wraps traces.ErrInvalid). Errors wrap
// traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) Search(ctx context.Context, canvas traces.CanvasID, q Range, r Retention) ([]traces.Summary, error) {
	if q.Limit < 1 {
		return nil, fmt.Errorf("search traces of %s: %w", canvas, traces.Invalid("limit", "must be at least 1"))
	}
	if bytes.Compare(q.Low[:], q.High[:]) > 0 {
		return []traces.Summary{}, nil
	}
	args := append([]any{[16]byte(canvas)}, r.args()...)
	args = append(args, [16]byte(q.Low), [16]byte(q.High), int64(q.Limit))
	sql := searchSQL
	if q.TLID != nil {
		sql, args = searchTLIDSQL, append(args, int64(*q.TLID))
	}
	out, err := db.kept(ctx, sql, args, min(q.Limit, 1024))
	if err != nil {
		return nil, fmt.Errorf("search traces of %s: %w", canvas, err)
	}
	return out, nil
}
