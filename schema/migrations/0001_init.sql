-- The trace index. Every table and index leads with canvas_id, so the index
-- can be partitioned or distributed by canvas, except the two noted below.

-- One row per indexed trace.
CREATE TABLE traces (
  canvas_id   uuid        NOT NULL,
  trace_id    uuid        NOT NULL,
  root_tlid   bigint      NOT NULL,      -- TLID (uint64) stored as its int64 bit pattern
  tlids       bigint[]    NOT NULL,      -- every toplevel it touched, root included (its trace_tlids rows, by primary key)
  ts          timestamptz NOT NULL,      -- the trace's timestamp
  generation  bigint      NOT NULL,      -- object generation these rows describe
  custom_time timestamptz NOT NULL,      -- oldest customTime tracegw set on the object and its layers
  layers      int         NOT NULL DEFAULT 0,
  held_at     timestamptz,
  hold_reason text,
  PRIMARY KEY (canvas_id, trace_id)
);

-- Exception to "leads with canvas_id": the admin lookup by trace ID alone
-- (GET /v1/traces/{id}).
CREATE INDEX traces_by_id ON traces (trace_id);

-- tlid -> trace, covering the list so "latest N of a toplevel" is one
-- index-only backward scan (trace IDs are UUIDv7: bytewise order is time order).
CREATE TABLE trace_tlids (
  canvas_id uuid        NOT NULL,
  tlid      bigint      NOT NULL,
  trace_id  uuid        NOT NULL,
  ts        timestamptz NOT NULL,
  root_tlid bigint      NOT NULL,
  held      boolean     NOT NULL DEFAULT false,
  PRIMARY KEY (canvas_id, tlid, trace_id) INCLUDE (ts, root_tlid, held)
);

-- Live toplevels for GC: renew_after is a lower bound of the oldest
-- customTime among its latest keepers.
CREATE TABLE toplevels (
  canvas_id   uuid        NOT NULL,
  tlid        bigint      NOT NULL,
  renew_after timestamptz NOT NULL,
  deleted_at  timestamptz,
  PRIMARY KEY (canvas_id, tlid)
);

-- Exception to "leads with canvas_id": GC discovers due canvases across all
-- canvases.
CREATE INDEX toplevels_due ON toplevels (renew_after, canvas_id) WHERE deleted_at IS NULL;
