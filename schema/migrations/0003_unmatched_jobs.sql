-- Unmatched requests ("404s") and background jobs (canvas deletion).
-- IF NOT EXISTS: schema_test rebuilds from a database it emptied of the
-- 0001 tables only.

-- One row per unmatched request. The listing is a loose index scan of the
-- primary key: per route, the newest trace_id (UUIDv7, so time order).
-- "C" collation: byte order, cheap comparisons, and the same order in every
-- locale. Rows leave when the route is dismissed, when their object's
-- deletion notification arrives, or with the canvas; the listing filters
-- out requests older than the retention period meanwhile.
CREATE TABLE IF NOT EXISTS unmatched (
  canvas_id uuid        NOT NULL,
  module    text        COLLATE "C" NOT NULL,
  path      text        COLLATE "C" NOT NULL,
  modifier  text        COLLATE "C" NOT NULL,
  trace_id  uuid        NOT NULL,
  ts        timestamptz NOT NULL,
  PRIMARY KEY (canvas_id, module, path, modifier, trace_id)
);

-- Removal by object name (the deletion notification names only the ID).
CREATE INDEX IF NOT EXISTS unmatched_by_id ON unmatched (canvas_id, trace_id);

-- Background jobs. Exception to "leads with canvas_id": a job is looked up
-- by its ID alone (GET /v1/jobs/{id}).
CREATE TABLE IF NOT EXISTS jobs (
  id         uuid        PRIMARY KEY,
  canvas_id  uuid        NOT NULL,
  kind       text        NOT NULL,
  state      text        NOT NULL CHECK (state IN ('running', 'done', 'failed')),
  deleted    bigint      NOT NULL DEFAULT 0,
  total      bigint      NOT NULL DEFAULT 0,
  error      text        NOT NULL DEFAULT '',
  created_at timestamptz NOT NULL,
  updated_at timestamptz NOT NULL
);

-- At most one running job of a kind per canvas: a second DELETE of a canvas
-- while one runs gets the same job.
CREATE UNIQUE INDEX IF NOT EXISTS jobs_running ON jobs (canvas_id, kind) WHERE state = 'running';

-- Stale running jobs, for the runner that takes them over.
CREATE INDEX IF NOT EXISTS jobs_running_since ON jobs (updated_at) WHERE state = 'running';
