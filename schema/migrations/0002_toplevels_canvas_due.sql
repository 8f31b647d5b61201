-- GC reads the due toplevels of one canvas at a time ("renew_after < $before
-- of canvas $c"). The primary key would scan every toplevel of the canvas and
-- toplevels_due every due toplevel of every canvas; this index reads only the
-- due toplevels of the canvas, so a GC pass costs what needs renewal.
CREATE INDEX toplevels_canvas_due ON toplevels (canvas_id, renew_after) WHERE deleted_at IS NULL;
