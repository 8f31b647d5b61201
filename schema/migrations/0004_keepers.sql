-- What keeps keepers safe under concurrency and partial failure.

-- Unfinished multi-step operations on a trace (replace, hold, release, layer
-- add), one token each: the database's clock_timestamp() when the operation
-- began. An operation that completes removes its own token; one that fails
-- or whose process dies leaves it, and the GC's repair step converges the
-- trace (index rows re-derived from the objects, objects' holds conformed
-- to the index) once the token is older than any operation may run.
ALTER TABLE traces ADD COLUMN IF NOT EXISTS pending timestamptz[] NOT NULL DEFAULT '{}';

-- Exception to "leads with canvas_id": the repair step finds unfinished
-- operations across all canvases, oldest first.
CREATE INDEX IF NOT EXISTS traces_pending ON traces ((pending[1])) WHERE cardinality(pending) > 0;

-- rev counts the writes that may lower renew_after or change liveness
-- (links of old traces, dropped links, forget, revive). GC writes
-- renew_after only if rev is still what it read with the keepers, so a
-- concurrent lowering is never overwritten.
ALTER TABLE toplevels ADD COLUMN IF NOT EXISTS rev bigint NOT NULL DEFAULT 0;

-- Set (database clock) when GC found the toplevel without traces; a later
-- pass deletes the row if it is still empty and untouched. Saves do not
-- skip their upsert while it is set, so no save can rely on a row that is
-- about to go.
ALTER TABLE toplevels ADD COLUMN IF NOT EXISTS empty_since timestamptz;

-- Exception to "leads with canvas_id": GC deletes forgotten toplevels
-- across all canvases once their traces have had time to expire.
CREATE INDEX IF NOT EXISTS toplevels_forgotten ON toplevels (deleted_at) WHERE deleted_at IS NOT NULL;

-- Deleted canvases. Written before the deletion job starts; every index
-- write that could create rows of a canvas checks it, so a save racing the
-- job's last pass cannot leave rows (or a kept trace) behind.
CREATE TABLE IF NOT EXISTS deleted_canvases (
  canvas_id  uuid        PRIMARY KEY,
  deleted_at timestamptz NOT NULL
);
