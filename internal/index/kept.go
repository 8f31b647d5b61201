package index

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// Why a trace is still stored (traces.Kept), computed in the same statement
// as the list that shows it, from the index alone: no object is read.

// Retention is what a listing needs to say why each trace is kept: the
// policy GC applies (ttl resolves it) and the listing's clock.
type Retention struct {
	// Period is the retention GCS may apply now: the strictest during a
	// change (ttl.Effective.Retention).
	Period time.Duration
	// Keep is the keep-N of a canvas without one of its own; a canvas's own
	// (canvas_policy) is read in the listing's statement.
	Keep int
	// Now is the listing's clock: recent means customTime + Period > Now.
	Now time.Time
}

// args are r as the kept queries' parameters $2 (keep), $3 (retention) and
// $4 (now).
func (r Retention) args() []any {
	return []any{int32(max(r.Keep, 1)), r.Period, r.Now}
}

// keepCTE is the canvas's keep-N: its own, or the default $2. Materialized,
// so it is read once per statement rather than once per use per row.
const keepCTE = `k AS MATERIALIZED (SELECT COALESCE((SELECT keep FROM canvas_policy WHERE canvas_id = $1), $2::int) AS keep)`

// keptLateral judges each row of x (trace_id, held, custom_time, tlids), k
// being keepCTE. latest_for are the tlids the trace touches whose toplevel
// is live (the rows GC reads keepers of) and that have fewer than keep
// newer traces. For the toplevel being listed (listed, a tlid expression;
// NULL when none) a newest-first list already knows both: the row's rank
// and whether that toplevel is live (computed once per list); any other
// tlid costs a probe of the toplevel's row and a forward index-only scan
// of at most keep entries of trace_tlids. custom_time is a lower bound of
// the objects' customTime, so expires_after is the earliest moment the
// lifecycle rule may delete the trace (NULL while it is held or latest:
// nothing deletes it then). OFFSET 0 keeps l a subquery of its own: pulled
// up, its ARRAY would be computed once per use.
func keptLateral(listed, rank, live string) string {
	return `CROSS JOIN LATERAL (
  SELECT l.latest_for,
    COALESCE(x.custom_time + $3::interval > $4::timestamptz, false) AS recent,
    CASE WHEN x.held OR cardinality(l.latest_for) > 0 THEN NULL ELSE x.custom_time + $3::interval END AS expires_after
  FROM (SELECT ARRAY(
    SELECT u.tlid FROM unnest(x.tlids) AS u(tlid)
    WHERE CASE WHEN u.tlid = ` + listed + ` THEN ` + rank + ` <= k.keep AND ` + live + `
      ELSE (SELECT count(*) FROM (
          SELECT FROM trace_tlids y WHERE y.canvas_id = $1 AND y.tlid = u.tlid AND y.trace_id > x.trace_id LIMIT k.keep
        ) AS newer) < k.keep
        AND EXISTS (SELECT FROM toplevels tl WHERE tl.canvas_id = $1 AND tl.tlid = u.tlid AND tl.deleted_at IS NULL) END
  ) AS latest_for OFFSET 0) AS l
) AS kept`
}

// keptAny is keptLateral for a list that is not one toplevel's newest.
var keptAny = keptLateral("NULL::bigint", "0", "false")

// tlidSource is the newest-first scan of one toplevel's traces (the
// trace_tlids primary key, index-only, backward) between two trace IDs,
// joined to the traces rows for what judging them needs. tlid, lo, hi and
// limit are parameter references.
func tlidSource(tlid, lo, hi, limit string) string {
	return `(
  SELECT y.trace_id, y.ts, y.root_tlid, y.held, t.custom_time, t.tlids
  FROM (
    SELECT trace_id, ts, root_tlid, held FROM trace_tlids
    WHERE canvas_id = $1 AND tlid = ` + tlid + ` AND trace_id BETWEEN ` + lo + ` AND ` + hi + `
    ORDER BY trace_id DESC LIMIT ` + limit + `
  ) AS y
  LEFT JOIN traces t ON t.canvas_id = $1 AND t.trace_id = y.trace_id
) AS x`
}

// newestSource is the newest limit traces of toplevel tlid with their rank
// (1: the newest), joined to the traces rows: tlidSource over the whole
// range, numbered in the order the scan returns them.
func newestSource(tlid, limit string) string {
	return `(
  SELECT y.trace_id, y.ts, y.root_tlid, y.held, y.rank, t.custom_time, t.tlids
  FROM (
    SELECT z.*, row_number() OVER (ORDER BY z.trace_id DESC) AS rank FROM (
      SELECT trace_id, ts, root_tlid, held FROM trace_tlids
      WHERE canvas_id = $1 AND tlid = ` + tlid + `
      ORDER BY trace_id DESC LIMIT ` + limit + `
    ) AS z
  ) AS y
  LEFT JOIN traces t ON t.canvas_id = $1 AND t.trace_id = y.trace_id
) AS x`
}

// liveSQL is whether toplevel tlid of canvas $1 is live, read once per
// toplevel (OFFSET 0: pulled up, the probe would run once per row).
func liveSQL(tlid string) string {
	return `(SELECT EXISTS (SELECT FROM toplevels WHERE canvas_id = $1 AND tlid = ` + tlid + ` AND deleted_at IS NULL) AS live OFFSET 0)`
}

// keptColumns are the judgement's columns, read by summaryScan after a
// row's own.
const keptColumns = `kept.latest_for, kept.recent, kept.expires_after`

// recentKeptSQL is recentSQL with each trace judged: the same backward
// index-only scan, then per row the traces row by primary key and the
// probes of keptLateral for the tlids other than $5 (whose liveness is read
// once). A test EXPLAINs this text.
var recentKeptSQL = `WITH ` + keepCTE + `
SELECT x.trace_id, x.ts, x.root_tlid, x.held, ` + keptColumns + `
FROM ` + newestSource("$5", "$6") + `
CROSS JOIN k CROSS JOIN ` + liveSQL("$5") + ` AS lv ` + keptLateral("$5", "x.rank", "lv.live") + `
ORDER BY x.trace_id DESC`

// summaryScan reads one row of a kept list into a Summary; dest is built
// once per query (a variadic call per row would allocate).
type summaryScan struct {
	id      [16]byte
	ts      time.Time
	root    int64
	held    bool
	latest  []int64
	recent  bool
	expires *time.Time
}

func (s *summaryScan) dest(extra ...any) []any {
	return append(extra, &s.id, &s.ts, &s.root, &s.held, &s.latest, &s.recent, &s.expires)
}

func (s *summaryScan) summary() traces.Summary {
	out := traces.Summary{ID: s.id, Timestamp: s.ts.UTC(), RootTLID: traces.TLID(s.root), Held: s.held,
		Kept: traces.Kept{Recent: s.recent}}
	out.Kept.LatestFor = latestFor(s.latest)
	if s.expires != nil {
		out.Kept.ExpiresAfter = s.expires.UTC()
	}
	return out
}

// latestFor is a latest_for array as TLIDs in ascending order (the index
// stores tlids sorted as signed 64-bit values); nil when empty.
func latestFor(a []int64) []traces.TLID {
	if len(a) == 0 {
		return nil
	}
	out := toTLIDs(a)
	slices.Sort(out)
	return out
}

// RecentKept is Recent with each trace judged under r (traces.Kept: which
// live toplevels it is among the newest keep-N of, whether it is within
// retention, when it may expire), in the same round trip. Errors as for
// Recent. Safe for concurrent use.
func (db *DB) RecentKept(ctx context.Context, canvas traces.CanvasID, tlid traces.TLID, limit int, r Retention) ([]traces.Summary, error) {
	if limit < 1 {
		return nil, fmt.Errorf("recent traces of tlid %d: %w", tlid, traces.Invalid("limit", "must be at least 1"))
	}
	args := append([]any{[16]byte(canvas)}, r.args()...)
	out, err := db.kept(ctx, recentKeptSQL, append(args, int64(tlid), int64(limit)), min(limit, 100))
	if err != nil {
		return nil, fmt.Errorf("recent traces of tlid %d: %w", tlid, err)
	}
	return out, nil
}

// kept runs a kept list query and reads its rows.
func (db *DB) kept(ctx context.Context, sql string, args []any, capacity int) ([]traces.Summary, error) {
	rows, err := db.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, translate(err)
	}
	defer rows.Close()
	out := make([]traces.Summary, 0, capacity)
	var s summaryScan
	dest := s.dest()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, translate(err)
		}
		out = append(out, s.summary())
	}
	if err := rows.Err(); err != nil {
		return nil, translate(err)
	}
	return out, nil
}

// recentManyKeptSQL is recentManySQL with each trace judged (see
// recentKeptSQL): per toplevel one probe of its liveness, one short
// backward scan; per row the traces row and the probes of the other tlids.
var recentManyKeptSQL = `WITH ` + keepCTE + `
SELECT r.tlid, x.trace_id, x.ts, x.root_tlid, x.held, ` + keptColumns + `
FROM unnest($5::bigint[]) AS r(tlid)
CROSS JOIN LATERAL ` + liveSQL("r.tlid") + ` AS lv
CROSS JOIN LATERAL ` + newestSource("r.tlid", "$6") + `
CROSS JOIN k ` + keptLateral("r.tlid", "x.rank", "lv.live")

// RecentManyKept is RecentMany with each trace judged under r, in the same
// round trip. Errors as for RecentMany. Safe for concurrent use.
func (db *DB) RecentManyKept(ctx context.Context, canvas traces.CanvasID, tlids []traces.TLID, limit int, r Retention) (map[traces.TLID][]traces.Summary, error) {
	if limit < 1 {
		return nil, fmt.Errorf("recent traces of %d tlids: %w", len(tlids), traces.Invalid("limit", "must be at least 1"))
	}
	out, keys := distinctTLIDs(tlids)
	if len(keys) == 0 {
		return out, nil
	}
	args := append([]any{[16]byte(canvas)}, r.args()...)
	rows, err := db.pool.Query(ctx, recentManyKeptSQL, append(args, keys, int64(limit))...)
	if err != nil {
		return nil, fmt.Errorf("recent traces of %d tlids: %w", len(keys), translate(err))
	}
	defer rows.Close()
	var (
		scan summaryScan
		tlid int64
	)
	if err := groupByTLID(rows, out, len(keys)*limit, scan.dest(&tlid), &tlid, scan.summary); err != nil {
		return nil, fmt.Errorf("recent traces of %d tlids: %w", len(keys), err)
	}
	return out, nil
}

// getKeptSQL is getSQL with the trace judged.
var getKeptSQL = `WITH ` + keepCTE + `
SELECT x.canvas_id, x.trace_id, x.root_tlid, x.tlids, x.ts, x.generation, x.custom_time, x.layers, x.held, ` + keptColumns + `
FROM (SELECT *, held_at IS NOT NULL AS held FROM traces WHERE canvas_id = $1 AND trace_id = $5) AS x
CROSS JOIN k ` + keptAny

// GetKept is Get with the trace judged under r (see RecentKept), in the
// same round trip. Errors as for Get. Safe for concurrent use.
func (db *DB) GetKept(ctx context.Context, canvas traces.CanvasID, id traces.TraceID, r Retention) (traces.Record, traces.Kept, error) {
	var (
		latest  []int64
		k       traces.Kept
		expires *time.Time
	)
	args := append([]any{[16]byte(canvas)}, r.args()...)
	rec, err := scanRecord(db.pool.QueryRow(ctx, getKeptSQL, append(args, [16]byte(id))...), &latest, &k.Recent, &expires)
	if err != nil {
		return traces.Record{}, traces.Kept{}, fmt.Errorf("get trace %s/%s: %w", canvas, id, translate(err))
	}
	k.LatestFor = latestFor(latest)
	if expires != nil {
		k.ExpiresAfter = expires.UTC()
	}
	return rec, k, nil
}
