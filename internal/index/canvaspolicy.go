package index

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/internal/traces"
)

// A canvas's own keep-N (table canvas_policy). Keepers and the kept
// listings read it in their own statements; SetCanvasKeep is the one
// writer.

// CanvasKeep returns canvas c's own keep-N, 0 when it has none (the
// server's default applies). Errors wrap traces.ErrUnavailable when the
// server cannot be reached. Safe for concurrent use.
func (db *DB) CanvasKeep(ctx context.Context, c traces.CanvasID) (int, error) {
	var keep int32
	err := db.pool.QueryRow(ctx, `SELECT keep FROM canvas_policy WHERE canvas_id = $1`, [16]byte(c)).Scan(&keep)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return 0, nil
	case err != nil:
		return 0, fmt.Errorf("keep of canvas %s: %w", c, translate(err))
	}
	return int(keep), nil
}

// KeepChange is what SetCanvasKeep did.
type KeepChange struct {
	// Prev and Keep are the canvas's own keep before and after (0: none,
	// the default applies).
	Prev, Keep int
	// Raised is true when the keep in effect went up: the canvas's live
	// toplevels were marked due (Marked of them).
	Raised bool
	Marked int64
}

// Marked toplevels are renewed by the next GC pass, or at once by
// ttl.GC.RenewToplevels(ctx, c, nil), which takes every toplevel of the
// canvas marked due.

// SetCanvasKeep sets canvas c's own keep-N (keep 0: none, the default
// defaultKeep applies) in one transaction, serialised per canvas. When the
// keep in effect goes up, every live toplevel of the canvas is marked due
// in the same transaction: renew_after '-infinity' (ranks between the old
// and the new keep may be older than renew_after says) and rev + 1, so a GC
// pass that read its keepers with the old keep cannot record a verdict on
// it (see SetRenewAfter), including a toplevel already marked. Lowering
// changes nothing else: traces past the new keep expire by the rule. A
// deleted canvas wraps traces.ErrNotFound; errors wrap
// traces.ErrUnavailable when the server cannot be reached. now is recorded
// as the change's time. Safe for concurrent use.
func (db *DB) SetCanvasKeep(ctx context.Context, c traces.CanvasID, keep, defaultKeep int, now time.Time) (KeepChange, error) {
	var out KeepChange
	err := retryDeadlock(func() error {
		return pgx.BeginFunc(ctx, db.pool, func(tx pgx.Tx) (err error) {
			out, err = setCanvasKeep(ctx, tx, c, keep, defaultKeep, now)
			return err
		})
	})
	switch {
	case errors.Is(err, traces.ErrNotFound):
		return KeepChange{}, fmt.Errorf("set keep of canvas %s: the canvas was deleted: %w", c, traces.ErrNotFound)
	case err != nil:
		return KeepChange{}, fmt.Errorf("set keep of canvas %s: %w", c, translate(err))
	}
	return out, nil
}

func setCanvasKeep(ctx context.Context, tx pgx.Tx, c traces.CanvasID, keep, defaultKeep int, now time.Time) (KeepChange, error) {
	var out KeepChange
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, canvasKeepLockKey(c)); err != nil {
		return out, err
	}
	var deleted bool
	if err := tx.QueryRow(ctx, `SELECT NOT `+notDeleted, [16]byte(c)).Scan(&deleted); err != nil {
		return out, err
	}
	if deleted {
		return out, traces.ErrNotFound
	}
	var prev int32
	err := tx.QueryRow(ctx, `SELECT keep FROM canvas_policy WHERE canvas_id = $1`, [16]byte(c)).Scan(&prev)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return out, err
	}
	out.Prev, out.Keep = int(prev), keep
	if keep > 0 {
		_, err = tx.Exec(ctx, `INSERT INTO canvas_policy (canvas_id, keep, updated_at) VALUES ($1, $2, $3)
ON CONFLICT (canvas_id) DO UPDATE SET keep = EXCLUDED.keep, updated_at = EXCLUDED.updated_at`, [16]byte(c), int32(keep), now)
	} else {
		_, err = tx.Exec(ctx, `DELETE FROM canvas_policy WHERE canvas_id = $1`, [16]byte(c))
	}
	if err != nil {
		return out, err
	}
	effective := func(k int) int {
		if k > 0 {
			return k
		}
		return defaultKeep
	}
	if out.Raised = effective(keep) > effective(out.Prev); !out.Raised {
		return out, nil
	}
	// Rows locked in tlid order first, as every writer of several does
	// (lockToplevelsSQL).
	tag, err := tx.Exec(ctx, `UPDATE toplevels t SET renew_after = '-infinity', rev = t.rev + 1
FROM (SELECT tlid FROM toplevels WHERE canvas_id = $1 AND deleted_at IS NULL ORDER BY tlid FOR UPDATE) l
WHERE t.canvas_id = $1 AND t.tlid = l.tlid`, [16]byte(c))
	out.Marked = tag.RowsAffected()
	return out, err
}

// canvasKeepLockKey is the transaction-level advisory lock that serialises
// SetCanvasKeep per canvas, so that whether a change raises the keep is
// decided against the value it replaces.
func canvasKeepLockKey(c traces.CanvasID) int64 {
	return lockKey("tracegw canvas keep\x00" + string(c[:]))
}
