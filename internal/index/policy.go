package index

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tracegw/tracegw/internal/traces"
)

// The retention policy record (table retention_policy, one row) and the
// coordination between GC passes and `tracegw retention set`. These queries
// are global, not per canvas, except MarkCanvasesDue, which works canvas by
// canvas.

// PolicyRecord is the retention policy as `tracegw retention set` (or the
// first GC pass of a fresh install) recorded it. Zero values mean "none".
type PolicyRecord struct {
	// RetentionDays is the lifecycle rule GC holds the bucket to.
	RetentionDays int64
	// PrevRetentionDays is the rule before the last change (0: none).
	PrevRetentionDays int64
	// RuleChangedAt is when the bucket's rule was set to RetentionDays;
	// zero while a recorded change has not reached the bucket yet.
	RuleChangedAt time.Time
	// RetentionSettlesAt is when GCS can no longer apply the previous rule.
	RetentionSettlesAt time.Time
	// Keep is the global keep-N.
	Keep int
	// PrevKeep is the keep before the last change (0: none).
	PrevKeep int
	// KeepChangedAt is when Keep was last changed.
	KeepChangedAt time.Time
	// KeepPending is true while a raise of Keep has not completed its
	// renewal pass.
	KeepPending bool
	// UpdatedAt is when the row was last written; SavePolicy compares it.
	UpdatedAt time.Time
}

const policyColumns = `retention_days, prev_retention_days, rule_changed_at, retention_settles_at,
  keep, prev_keep, keep_changed_at, keep_pending, updated_at`

func scanPolicy(row pgx.Row) (PolicyRecord, error) {
	var (
		r                         PolicyRecord
		days, keep                int32
		prevDays, prevKeep        *int32
		changed, settles, kchange *time.Time
	)
	if err := row.Scan(&days, &prevDays, &changed, &settles, &keep, &prevKeep, &kchange, &r.KeepPending, &r.UpdatedAt); err != nil {
		return PolicyRecord{}, translate(err)
	}
	r.RetentionDays, r.Keep = int64(days), int(keep)
	if prevDays != nil {
		r.PrevRetentionDays = int64(*prevDays)
	}
	if prevKeep != nil {
		r.PrevKeep = int(*prevKeep)
	}
	for _, p := range []struct {
		src *time.Time
		dst *time.Time
	}{{changed, &r.RuleChangedAt}, {settles, &r.RetentionSettlesAt}, {kchange, &r.KeepChangedAt}} {
		if p.src != nil {
			*p.dst = p.src.UTC()
		}
	}
	r.UpdatedAt = r.UpdatedAt.UTC()
	return r, nil
}

// args are r's columns in policyColumns order, zero values as NULL.
func (r PolicyRecord) args() []any {
	null := func(t time.Time) any {
		if t.IsZero() {
			return nil
		}
		return t
	}
	positive := func(n int64) any {
		if n <= 0 {
			return nil
		}
		return n
	}
	return []any{r.RetentionDays, positive(r.PrevRetentionDays), null(r.RuleChangedAt), null(r.RetentionSettlesAt),
		int64(r.Keep), positive(int64(r.PrevKeep)), null(r.KeepChangedAt), r.KeepPending, r.UpdatedAt.Truncate(time.Microsecond)}
}

// Policy returns the policy record; found is false on a fresh install.
// Errors wrap traces.ErrUnavailable when the server cannot be reached. Safe
// for concurrent use.
func (db *DB) Policy(ctx context.Context) (r PolicyRecord, found bool, err error) {
	r, err = scanPolicy(db.pool.QueryRow(ctx, `SELECT `+policyColumns+` FROM retention_policy`))
	switch {
	case errors.Is(err, traces.ErrNotFound):
		return PolicyRecord{}, false, nil
	case err != nil:
		return PolicyRecord{}, false, fmt.Errorf("read policy: %w", err)
	}
	return r, true, nil
}

// InitPolicy stores r unless a policy record exists, and returns the record
// that is stored: r, or the one another replica stored first. Errors wrap
// traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) InitPolicy(ctx context.Context, r PolicyRecord) (PolicyRecord, error) {
	const q = `
WITH ins AS (
  INSERT INTO retention_policy (` + policyColumns + `)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
  ON CONFLICT (singleton) DO NOTHING
  RETURNING ` + policyColumns + `
)
SELECT ` + policyColumns + ` FROM ins
UNION ALL
SELECT ` + policyColumns + ` FROM retention_policy WHERE NOT EXISTS (SELECT FROM ins)`
	got, err := scanPolicy(db.pool.QueryRow(ctx, q, r.args()...))
	if err != nil {
		return PolicyRecord{}, fmt.Errorf("init policy: %w", err)
	}
	return got, nil
}

// SavePolicy writes r if the stored record is still the one read (its
// UpdatedAt equals ifUpdatedAt, compared at PostgreSQL's microsecond
// precision; zero: no record may exist yet). r.UpdatedAt becomes the new
// UpdatedAt. A record changed meanwhile wraps
// traces.ErrPreconditionFailed; errors wrap traces.ErrUnavailable when the
// server cannot be reached. Safe for concurrent use.
func (db *DB) SavePolicy(ctx context.Context, r PolicyRecord, ifUpdatedAt time.Time) error {
	var tag int64
	if ifUpdatedAt.IsZero() {
		ct, err := db.pool.Exec(ctx, `INSERT INTO retention_policy (`+policyColumns+`)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (singleton) DO NOTHING`, r.args()...)
		if err != nil {
			return fmt.Errorf("save policy: %w", translate(err))
		}
		tag = ct.RowsAffected()
	} else {
		ct, err := db.pool.Exec(ctx, `UPDATE retention_policy SET (`+policyColumns+`) =
($1, $2, $3, $4, $5, $6, $7, $8, $9) WHERE updated_at = $10`, append(r.args(), ifUpdatedAt.Truncate(time.Microsecond))...)
		if err != nil {
			return fmt.Errorf("save policy: %w", translate(err))
		}
		tag = ct.RowsAffected()
	}
	if tag != 1 {
		return fmt.Errorf("save policy: the record changed meanwhile: %w", traces.ErrPreconditionFailed)
	}
	return nil
}

// Advisory lock keys of the policy coordination, hashed from names like
// gcLockKey's so they do not collide with other locks of the database.
var (
	passBarrierKey  = lockKey("tracegw gc pass barrier")
	policyChangeKey = lockKey("tracegw retention set")
)

func lockKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte(name))
	return int64(binary.BigEndian.Uint64(h.Sum(nil)))
}

// Lock is a session-level advisory lock held on a connection of its own
// (the claims pool) until Release. If the connection dies the server
// releases the lock by itself.
type Lock struct {
	conn   *pgxpool.Conn
	key    int64
	shared bool
}

// Release gives the lock up and returns its connection to the pool; if the
// unlock fails the connection is closed, which releases the lock too. It
// uses its own short timeout, so it works after ctx ends. Idempotent.
func (l *Lock) Release() {
	if l == nil || l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unlock := `SELECT pg_advisory_unlock($1)`
	if l.shared {
		unlock = `SELECT pg_advisory_unlock_shared($1)`
	}
	if _, err := l.conn.Exec(ctx, unlock, l.key); err != nil {
		_ = l.conn.Hijack().Close(ctx)
	} else {
		l.conn.Release()
	}
	l.conn = nil
}

// BeginPass takes the GC pass barrier in shared mode, waiting while a
// WaitForPasses is in progress: passes never wait for one another. A pass
// holds it from before it reads the policy until it ends, and then calls
// Release. Errors wrap traces.ErrUnavailable when the server cannot be
// reached. Safe for concurrent use.
func (db *DB) BeginPass(ctx context.Context) (*Lock, error) {
	conn, err := db.lockConn(ctx)
	if err != nil {
		return nil, fmt.Errorf("begin pass: %w", err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock_shared($1)`, passBarrierKey); err != nil {
		conn.Release()
		return nil, fmt.Errorf("begin pass: %w", translate(err))
	}
	return &Lock{conn: conn, key: passBarrierKey, shared: true}, nil
}

// WaitForPasses returns once every GC pass that began (BeginPass) before
// it was called has ended: it takes the barrier exclusively and releases it
// at once. A policy change recorded before the call is therefore seen by
// every pass running after it returns. It waits as long as the longest pass
// in progress (a pass's deadline is one GC interval), or until ctx ends.
// Errors wrap traces.ErrUnavailable when the server cannot be reached.
func (db *DB) WaitForPasses(ctx context.Context) error {
	conn, err := db.lockConn(ctx)
	if err != nil {
		return fmt.Errorf("wait for gc passes: %w", err)
	}
	l := &Lock{conn: conn, key: passBarrierKey}
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, passBarrierKey); err != nil {
		// A cancelled wait may leave the lock granted after all: closing
		// the connection releases whatever it holds.
		_ = conn.Hijack().Close(context.Background())
		return fmt.Errorf("wait for gc passes: %w", translate(err))
	}
	l.Release()
	return nil
}

// LockPolicyChange makes sure only one `tracegw retention set` runs at a
// time: ok is false if another holds the lock. On success the caller must
// call Release. Errors wrap traces.ErrUnavailable when the server cannot be
// reached.
func (db *DB) LockPolicyChange(ctx context.Context) (l *Lock, ok bool, err error) {
	conn, err := db.lockConn(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("lock policy change: %w", err)
	}
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, policyChangeKey).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("lock policy change: %w", translate(err))
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return &Lock{conn: conn, key: policyChangeKey}, true, nil
}

// lockConn takes a connection for a session-level advisory lock out of the
// claims pool.
func (db *DB) lockConn(ctx context.Context) (*pgxpool.Conn, error) {
	claims, err := db.claimPool(ctx)
	if err != nil {
		return nil, translate(err)
	}
	conn, err := claims.Acquire(ctx)
	if err != nil {
		return nil, translate(err)
	}
	return conn, nil
}

// markDueSQL marks the live toplevels of the next $2 canvases after $1 due
// ('-infinity', a value GC never writes, so MarkedDue can count what is
// left). The canvases are found by a loose index scan of the primary key
// (one probe per canvas), so a batch costs its canvases' toplevels only.
const markDueSQL = `
WITH RECURSIVE c AS (
  (SELECT canvas_id FROM toplevels WHERE canvas_id > $1 ORDER BY canvas_id LIMIT 1)
  UNION ALL
  SELECT (SELECT t.canvas_id FROM toplevels t WHERE t.canvas_id > c.canvas_id ORDER BY t.canvas_id LIMIT 1)
  FROM c WHERE c.canvas_id IS NOT NULL
), batch AS (
  SELECT canvas_id FROM c WHERE canvas_id IS NOT NULL LIMIT $2
), l AS (
  -- locked in key order first, as every writer of several toplevels does
  SELECT t.canvas_id, t.tlid FROM toplevels t JOIN batch b ON t.canvas_id = b.canvas_id
  WHERE t.deleted_at IS NULL AND t.renew_after > '-infinity'
  ORDER BY t.canvas_id, t.tlid FOR UPDATE OF t
), upd AS (
  UPDATE toplevels t SET renew_after = '-infinity', rev = t.rev + 1
  FROM l WHERE t.canvas_id = l.canvas_id AND t.tlid = l.tlid
  RETURNING 1
)
SELECT (SELECT canvas_id FROM batch ORDER BY canvas_id DESC LIMIT 1), (SELECT count(*) FROM batch), (SELECT count(*) FROM upd)`

// MarkCanvasesDue marks every live toplevel of up to canvases canvases
// after after (the zero ID to start) due for GC, in one transaction, and
// returns the last canvas of the batch (to pass as after next time), how
// many canvases and toplevels it covered. done is true when no canvas was
// left. Used when keep-N is raised: ranks between the old and the new keep
// may be older than renew_after says. Errors wrap traces.ErrUnavailable
// when the server cannot be reached. Safe for concurrent use.
func (db *DB) MarkCanvasesDue(ctx context.Context, after traces.CanvasID, canvases int) (last traces.CanvasID, nCanvases, toplevels int64, done bool, err error) {
	var max *[16]byte
	err = retryDeadlock(func() error {
		return db.pool.QueryRow(ctx, markDueSQL, [16]byte(after), int64(canvases)).Scan(&max, &nCanvases, &toplevels)
	})
	if err != nil {
		return after, 0, 0, false, fmt.Errorf("mark toplevels due after %s: %w", after, translate(err))
	}
	if max == nil {
		return after, 0, 0, true, nil
	}
	return traces.CanvasID(*max), nCanvases, toplevels, false, nil
}

// MarkedDue counts the live toplevels MarkCanvasesDue marked that no GC
// pass has processed since (it reads the due end of toplevels_due). Errors
// wrap traces.ErrUnavailable when the server cannot be reached.
func (db *DB) MarkedDue(ctx context.Context) (int64, error) {
	var n int64
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM toplevels WHERE deleted_at IS NULL AND renew_after = '-infinity'`).Scan(&n); err != nil {
		return 0, fmt.Errorf("count toplevels marked due: %w", translate(err))
	}
	return n, nil
}
