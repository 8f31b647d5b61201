-- A forgotten toplevel's row stays for good (a tombstone: a trace that
-- names the toplevel later revives it only if its timestamp is after the
-- deletion), so GC no longer looks for forgotten rows to delete across
-- canvases, and the index it used goes.
DROP INDEX IF EXISTS toplevels_forgotten;
