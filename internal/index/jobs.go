package index

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// Queries for background jobs (canvas deletion). The jobs table is keyed by
// job ID, an exception to "leads with canvas_id": GET /v1/jobs/{id} names
// only the job.

const jobColumns = `id, canvas_id, kind, state, deleted, total, error, created_at, updated_at`

// startJobSQL inserts a running job unless one of its kind already runs
// for the canvas (the partial unique index jobs_running), then returns the
// running one. RETURNING sees only the row this statement inserted, so the
// fallback SELECT reads the winner when the insert did nothing.
const startJobSQL = `
WITH ins AS (
  INSERT INTO jobs (` + jobColumns + `)
  VALUES ($1, $2, $3, 'running', 0, 0, '', $4, $4)
  ON CONFLICT (canvas_id, kind) WHERE state = 'running' DO NOTHING
  RETURNING ` + jobColumns + `
)
SELECT ` + jobColumns + `, true FROM ins
UNION ALL
SELECT ` + jobColumns + `, false FROM jobs
WHERE canvas_id = $2 AND kind = $3 AND state = 'running' AND NOT EXISTS (SELECT FROM ins)`

// StartJob records j as running (state, counters and error are ignored;
// Created is both created_at and updated_at) unless a job of j.Kind already
// runs for j.Canvas, and returns the running job: created says whether it
// is j. Errors wrap traces.ErrUnavailable when the server cannot be
// reached. Safe for concurrent use.
func (db *DB) StartJob(ctx context.Context, j traces.Job) (traces.Job, bool, error) {
	// The running job may finish between the insert's conflict and the
	// SELECT (which then finds nothing); the next attempt inserts.
	for range 3 {
		var created bool
		got, err := scanJob(db.pool.QueryRow(ctx, startJobSQL, [16]byte(j.ID), [16]byte(j.Canvas), j.Kind, j.Created), &created)
		if errors.Is(err, traces.ErrNotFound) {
			continue
		}
		if err != nil {
			return traces.Job{}, false, fmt.Errorf("start job for %s: %w", j.Canvas, err)
		}
		return got, created, nil
	}
	return traces.Job{}, false, fmt.Errorf("start job for %s: jobs keep finishing: %w", j.Canvas, traces.ErrUnavailable)
}

// Job returns one job. An unknown ID wraps traces.ErrNotFound; errors wrap
// traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) Job(ctx context.Context, id traces.JobID) (traces.Job, error) {
	j, err := scanJob(db.pool.QueryRow(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, [16]byte(id)))
	if err != nil {
		return traces.Job{}, fmt.Errorf("job %s: %w", id, err)
	}
	return j, nil
}

// claimJobsSQL takes over running jobs whose last update is at or before
// $1. Re-checking the condition under the row lock means two processes
// claiming at once cannot both get a job.
const claimJobsSQL = `
UPDATE jobs SET updated_at = $2
WHERE state = 'running' AND updated_at <= $1
RETURNING ` + jobColumns

// ClaimJobs takes over running jobs not updated since staleBefore (their
// runner stopped) by setting updated_at to now, and returns them. Errors
// wrap traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) ClaimJobs(ctx context.Context, staleBefore, now time.Time) ([]traces.Job, error) {
	rows, err := db.pool.Query(ctx, claimJobsSQL, staleBefore, now)
	if err != nil {
		return nil, fmt.Errorf("claim jobs: %w", translate(err))
	}
	defer rows.Close()
	var out []traces.Job
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, fmt.Errorf("claim jobs: %w", err)
		}
		out = append(out, j)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim jobs: %w", translate(err))
	}
	return out, nil
}

const updateJobSQL = `
UPDATE jobs SET state = $2, deleted = $3, total = $4, error = $5, updated_at = $6
WHERE id = $1 AND state = 'running'`

// UpdateJob records a running job's progress, state and error, and
// updated_at = j.Updated. A job that is no longer running is left alone
// (not an error). Errors wrap traces.ErrUnavailable when the server cannot
// be reached. Safe for concurrent use.
func (db *DB) UpdateJob(ctx context.Context, j traces.Job) error {
	if _, err := db.pool.Exec(ctx, updateJobSQL, [16]byte(j.ID), j.State, j.Deleted, j.Total, j.Error, j.Updated); err != nil {
		return fmt.Errorf("update job %s: %w", j.ID, translate(err))
	}
	return nil
}

// removeCanvasRowsSQL deletes up to $2 rows of each table of a canvas, by
// primary key, so each statement holds few locks and a big canvas never
// becomes one long transaction.
const removeCanvasRowsSQL = `
WITH tt AS (
  DELETE FROM trace_tlids x USING (
    SELECT tlid, trace_id FROM trace_tlids WHERE canvas_id = $1 LIMIT $2
  ) AS k WHERE x.canvas_id = $1 AND x.tlid = k.tlid AND x.trace_id = k.trace_id
  RETURNING 1
), t AS (
  DELETE FROM traces x USING (
    SELECT trace_id FROM traces WHERE canvas_id = $1 LIMIT $2
  ) AS k WHERE x.canvas_id = $1 AND x.trace_id = k.trace_id
  RETURNING 1
), tl AS (
  DELETE FROM toplevels x USING (
    SELECT tlid FROM toplevels WHERE canvas_id = $1 LIMIT $2
  ) AS k WHERE x.canvas_id = $1 AND x.tlid = k.tlid
  RETURNING 1
), u AS (
  DELETE FROM unmatched x USING (
    SELECT module, path, modifier, trace_id FROM unmatched WHERE canvas_id = $1 LIMIT $2
  ) AS k WHERE x.canvas_id = $1 AND x.module = k.module AND x.path = k.path
    AND x.modifier = k.modifier AND x.trace_id = k.trace_id
  RETURNING 1
), p AS (
  DELETE FROM canvas_policy WHERE canvas_id = $1
  RETURNING 1
)
SELECT (SELECT count(*) FROM tt) + (SELECT count(*) FROM t) + (SELECT count(*) FROM tl) + (SELECT count(*) FROM u) + (SELECT count(*) FROM p)`

// RemoveCanvasRows deletes up to batch rows of each index table (traces,
// trace_tlids, toplevels, unmatched, canvas_policy) of canvas c in one statement and
// returns how many it deleted; call it until it returns 0. Errors wrap
// traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) RemoveCanvasRows(ctx context.Context, c traces.CanvasID, batch int) (int64, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, removeCanvasRowsSQL, [16]byte(c), int64(batch)).Scan(&n); err != nil {
		return 0, fmt.Errorf("remove rows of canvas %s: %w", c, translate(err))
	}
	return n, nil
}

func scanJob(row rowScanner, extra ...any) (traces.Job, error) {
	var (
		j          traces.Job
		id, canvas [16]byte
	)
	dest := append([]any{&id, &canvas, &j.Kind, &j.State, &j.Deleted, &j.Total, &j.Error, &j.Created, &j.Updated}, extra...)
	if err := row.Scan(dest...); err != nil {
		return traces.Job{}, translate(err)
	}
	j.ID, j.Canvas = id, canvas
	j.Created, j.Updated = j.Created.UTC(), j.Updated.UTC()
	return j, nil
}
