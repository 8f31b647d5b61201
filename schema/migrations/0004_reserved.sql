-- Reserved: migration 0004 is taken by a change developed in parallel with
-- 0005. Migration numbers must be contiguous, so this empty file holds the
-- place; it is replaced by that migration when both are merged.
SELECT 1;
