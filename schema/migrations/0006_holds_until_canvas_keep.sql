-- Holds that end by themselves, who placed a hold, and a keep-N per canvas.

-- A hold may name its end (hold_until): GC releases it then, as a manual
-- release does. held_by is the token's subject of whoever placed it. Both
-- go with the hold: a trace that is not held has neither.
ALTER TABLE traces ADD COLUMN IF NOT EXISTS hold_until timestamptz;
ALTER TABLE traces ADD COLUMN IF NOT EXISTS held_by text;
ALTER TABLE traces DROP CONSTRAINT IF EXISTS traces_hold_until_held;
ALTER TABLE traces ADD CONSTRAINT traces_hold_until_held
  CHECK (held_at IS NOT NULL OR (hold_until IS NULL AND held_by IS NULL));

-- Exception to "leads with canvas_id": GC finds the holds whose end has
-- come across all canvases, earliest first.
CREATE INDEX IF NOT EXISTS traces_hold_until ON traces (hold_until) WHERE hold_until IS NOT NULL;

-- A canvas's own keep-N (PUT /v1/canvases/{canvasID}/policy); a canvas
-- without a row keeps the server's --keep-per-toplevel. GC's keepers query
-- and the listings read it in the same statement as the rows they judge.
CREATE TABLE IF NOT EXISTS canvas_policy (
  canvas_id  uuid        PRIMARY KEY,
  keep       int         NOT NULL CHECK (keep BETWEEN 1 AND 1000),
  updated_at timestamptz NOT NULL
);
