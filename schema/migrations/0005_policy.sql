-- The retention policy every GC replica reads at the start of each pass,
-- and what GC and the notification consumer report about themselves (read
-- by `tracegw status`). These tables are global, an exception to "leads
-- with canvas_id": they hold one row, a bounded history and one row per
-- bucket. A per-canvas keep will get a table of its own keyed by canvas_id.

-- The one policy row, written by `tracegw retention set` (and by the first
-- GC pass of a fresh install, from its flags). The bucket's lifecycle rule
-- is the source of truth for retention; this row records the change in
-- progress, so every replica applies the same transition.
CREATE TABLE retention_policy (
  singleton            boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
  retention_days       int         NOT NULL CHECK (retention_days > 0),  -- the rule GC holds the bucket to
  prev_retention_days  int         CHECK (prev_retention_days > 0),      -- the rule before the last change; NULL: none
  rule_changed_at      timestamptz,          -- when the rule was set to retention_days; NULL: a change not yet made
  retention_settles_at timestamptz,          -- GCS may apply the previous rule until then
  keep                 int         NOT NULL CHECK (keep > 0),            -- latest traces of each live toplevel kept
  prev_keep            int         CHECK (prev_keep > 0),                -- the keep before the last change; NULL: none
  keep_changed_at      timestamptz,
  keep_pending         boolean     NOT NULL DEFAULT false,               -- a raise whose renewal pass has not completed
  updated_at           timestamptz NOT NULL
);

-- GC pass outcomes, newest last; each write keeps the newest 100 rows and
-- the newest successful one, so the table stays small.
CREATE TABLE gc_passes (
  id               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  replica          text        NOT NULL,  -- host and process of the GC
  started_at       timestamptz NOT NULL,
  ended_at         timestamptz NOT NULL,
  outcome          text        NOT NULL CHECK (outcome IN ('ok', 'failed', 'cut_short', 'refused')),
  retention_days   int         NOT NULL,  -- the effective (strictest) retention it renewed against; 0 if refused early
  keep             int         NOT NULL,
  margin_seconds   bigint      NOT NULL,
  interval_seconds bigint      NOT NULL,
  keeper_deadline  timestamptz,           -- outcome ok only: no keeper can be deleted before it
  canvases         int         NOT NULL,
  renewed          int         NOT NULL,
  failed           int         NOT NULL,
  skipped          int         NOT NULL,
  error            text        NOT NULL DEFAULT ''
);

CREATE INDEX gc_passes_ok ON gc_passes (id) WHERE outcome = 'ok';

-- The notification consumer's latest progress, written at most every few
-- seconds by whichever consumer replica applied a batch.
CREATE TABLE notify_progress (
  bucket          text             PRIMARY KEY,
  last_event_time timestamptz      NOT NULL,  -- newest eventTime applied
  lag_seconds     double precision NOT NULL,  -- the largest lag applied since the previous write
  recorded_at     timestamptz      NOT NULL
);
