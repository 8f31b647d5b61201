package index

import (
	"context"
	"fmt"
	"time"
)

// What the background jobs report about themselves (tables gc_passes and
// notify_progress), for `tracegw status` and any process that watches them,
// and the size of the index. These are global rows, not per canvas.

// PassRecord is the outcome of one GC pass.
type PassRecord struct {
	Replica   string
	StartedAt time.Time
	EndedAt   time.Time
	// Outcome is one of PassOK, PassFailed, PassCutShort, PassRefused.
	Outcome       string
	RetentionDays int64 // the effective retention the pass renewed against
	Keep          int
	Margin        time.Duration
	Interval      time.Duration
	// KeeperDeadline is set for PassOK only: no keeper can be deleted
	// before it, even if GC stopped after this pass.
	KeeperDeadline time.Time
	Canvases       int
	Renewed        int
	Failed         int
	Skipped        int
	Error          string
}

// The outcomes of a GC pass.
const (
	PassOK       = "ok"        // every due keeper renewed (or found fresh, held or gone)
	PassFailed   = "failed"    // some keepers or canvases failed
	PassCutShort = "cut_short" // it hit its deadline (one GC interval)
	PassRefused  = "refused"   // the policy disagreed with the bucket or the record; nothing renewed
)

// passHistory is how many pass records RecordPass keeps (plus the newest
// successful one, however old).
const passHistory = 100

const passColumns = `replica, started_at, ended_at, outcome, retention_days, keep, margin_seconds,
  interval_seconds, keeper_deadline, canvases, renewed, failed, skipped, error`

// RecordPass appends p to the pass history and trims the history to the
// newest passHistory records and the newest successful one. Errors wrap
// traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) RecordPass(ctx context.Context, p PassRecord) error {
	var deadline any
	if !p.KeeperDeadline.IsZero() {
		deadline = p.KeeperDeadline
	}
	const q = `
WITH ins AS (
  INSERT INTO gc_passes (` + passColumns + `)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
  RETURNING id
)
DELETE FROM gc_passes
WHERE id <= (SELECT id FROM ins) - $15
  AND id <> COALESCE((SELECT max(id) FROM gc_passes WHERE outcome = 'ok'), 0)`
	_, err := db.pool.Exec(ctx, q, p.Replica, p.StartedAt, p.EndedAt, p.Outcome, p.RetentionDays, int64(p.Keep),
		int64(p.Margin/time.Second), int64(p.Interval/time.Second), deadline, int64(p.Canvases), int64(p.Renewed),
		int64(p.Failed), int64(p.Skipped), p.Error, int64(passHistory))
	if err != nil {
		return fmt.Errorf("record gc pass: %w", translate(err))
	}
	return nil
}

// PassHistory returns the newest GC pass and the newest successful one
// (either found false if there is none). Errors wrap
// traces.ErrUnavailable when the server cannot be reached.
func (db *DB) PassHistory(ctx context.Context) (last PassRecord, lastFound bool, ok PassRecord, okFound bool, err error) {
	last, lastFound, err = db.pass(ctx, `SELECT `+passColumns+` FROM gc_passes ORDER BY id DESC LIMIT 1`)
	if err != nil {
		return
	}
	ok, okFound, err = db.pass(ctx, `SELECT `+passColumns+` FROM gc_passes WHERE outcome = 'ok' ORDER BY id DESC LIMIT 1`)
	return
}

func (db *DB) pass(ctx context.Context, q string) (PassRecord, bool, error) {
	rows, err := db.pool.Query(ctx, q)
	if err != nil {
		return PassRecord{}, false, fmt.Errorf("read gc passes: %w", translate(err))
	}
	defer rows.Close()
	if !rows.Next() {
		return PassRecord{}, false, translate(rows.Err())
	}
	var (
		p                                  PassRecord
		days, keep, margin, interval       int64
		canvases, renewed, failed, skipped int64
		deadline                           *time.Time
	)
	if err := rows.Scan(&p.Replica, &p.StartedAt, &p.EndedAt, &p.Outcome, &days, &keep, &margin, &interval,
		&deadline, &canvases, &renewed, &failed, &skipped, &p.Error); err != nil {
		return PassRecord{}, false, fmt.Errorf("read gc passes: %w", translate(err))
	}
	p.StartedAt, p.EndedAt = p.StartedAt.UTC(), p.EndedAt.UTC()
	p.RetentionDays, p.Keep = days, int(keep)
	p.Margin, p.Interval = time.Duration(margin)*time.Second, time.Duration(interval)*time.Second
	if deadline != nil {
		p.KeeperDeadline = deadline.UTC()
	}
	p.Canvases, p.Renewed, p.Failed, p.Skipped = int(canvases), int(renewed), int(failed), int(skipped)
	return p, true, nil
}

// NotifyProgress is the notification consumer's latest progress on one
// bucket.
type NotifyProgress struct {
	Bucket string
	// LastEventTime is the newest eventTime among the notifications applied.
	LastEventTime time.Time
	// Lag is the largest delay from eventTime to commit since the previous
	// record.
	Lag        time.Duration
	RecordedAt time.Time
}

// RecordNotifyProgress stores p as the bucket's progress, keeping the newer
// LastEventTime if another replica recorded one. Errors wrap
// traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) RecordNotifyProgress(ctx context.Context, p NotifyProgress) error {
	const q = `
INSERT INTO notify_progress (bucket, last_event_time, lag_seconds, recorded_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (bucket) DO UPDATE SET
  last_event_time = GREATEST(notify_progress.last_event_time, EXCLUDED.last_event_time),
  lag_seconds = EXCLUDED.lag_seconds,
  recorded_at = EXCLUDED.recorded_at`
	if _, err := db.pool.Exec(ctx, q, p.Bucket, p.LastEventTime, p.Lag.Seconds(), p.RecordedAt); err != nil {
		return fmt.Errorf("record notify progress: %w", translate(err))
	}
	return nil
}

// NotifyProgresses returns the recorded progress of every bucket. Errors
// wrap traces.ErrUnavailable when the server cannot be reached.
func (db *DB) NotifyProgresses(ctx context.Context) ([]NotifyProgress, error) {
	rows, err := db.pool.Query(ctx, `SELECT bucket, last_event_time, lag_seconds, recorded_at FROM notify_progress ORDER BY bucket`)
	if err != nil {
		return nil, fmt.Errorf("read notify progress: %w", translate(err))
	}
	defer rows.Close()
	var out []NotifyProgress
	for rows.Next() {
		var (
			p   NotifyProgress
			lag float64
		)
		if err := rows.Scan(&p.Bucket, &p.LastEventTime, &lag, &p.RecordedAt); err != nil {
			return nil, fmt.Errorf("read notify progress: %w", translate(err))
		}
		p.LastEventTime, p.RecordedAt = p.LastEventTime.UTC(), p.RecordedAt.UTC()
		p.Lag = time.Duration(lag * float64(time.Second))
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read notify progress: %w", translate(err))
	}
	return out, nil
}

// TableSize is the size of one table of the index.
type TableSize struct {
	Table string
	// Rows is the planner's estimate (pg_class.reltuples); -1 when the
	// table has never been vacuumed or analyzed.
	Rows int64
	// Bytes counts the table, its indexes and TOAST data.
	Bytes int64
}

// TableSizes returns the size of every table in the index's schema,
// largest first. It reads catalog statistics only, so it is cheap at any
// size. Errors wrap traces.ErrUnavailable when the server cannot be reached.
func (db *DB) TableSizes(ctx context.Context) ([]TableSize, error) {
	rows, err := db.pool.Query(ctx, `
SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
ORDER BY pg_total_relation_size(c.oid) DESC, c.relname`)
	if err != nil {
		return nil, fmt.Errorf("table sizes: %w", translate(err))
	}
	defer rows.Close()
	var out []TableSize
	for rows.Next() {
		var s TableSize
		if err := rows.Scan(&s.Table, &s.Rows, &s.Bytes); err != nil {
			return nil, fmt.Errorf("table sizes: %w", translate(err))
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("table sizes: %w", translate(err))
	}
	return out, nil
}
