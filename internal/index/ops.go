package index

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/internal/traces"
)

// Operation tokens. A replace, hold, release or layer add writes objects and
// index rows in several steps, and the process may die, or the database
// fail, between any two. So each such operation first records a token on
// the trace's row (in the same statement as its first index write), and
// removes it with its last one. A token that stays behind marks a trace
// whose objects and rows may disagree; GC's repair step (Pending, Reindex)
// converges it once the token is older than any operation may run. Tokens
// are the database's clock_timestamp(), so their age is measured on one
// clock whatever the gateways' clocks say.

// Token identifies one operation's mark on a trace row. The zero Token is
// no token.
type Token struct{ t time.Time }

// IsZero reports whether t is no token.
func (t Token) IsZero() bool { return t.t.IsZero() }

// beginOpSQL adds a token and returns the row as it is now.
const beginOpSQL = `
UPDATE traces SET pending = pending || clock_timestamp()
WHERE canvas_id = $1 AND trace_id = $2
RETURNING ` + recordColumns + `, pending[cardinality(pending)]`

// BeginOp marks trace id of canvas c with a new operation token and returns
// its record. An unknown trace wraps traces.ErrNotFound. Errors wrap
// traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) BeginOp(ctx context.Context, c traces.CanvasID, id traces.TraceID) (traces.Record, Token, error) {
	var tok time.Time
	r, err := scanRecord(db.pool.QueryRow(ctx, beginOpSQL, [16]byte(c), [16]byte(id)), &tok)
	if err != nil {
		return traces.Record{}, Token{}, fmt.Errorf("begin operation on %s/%s: %w", c, id, translate(err))
	}
	return r, Token{tok}, nil
}

// endOpHeldSQL removes a token if the trace's hold is still $4.
const endOpHeldSQL = `
UPDATE traces SET pending = CASE WHEN (held_at IS NOT NULL) = $4 THEN array_remove(pending, $3) ELSE pending END
WHERE canvas_id = $1 AND trace_id = $2
RETURNING held_at IS NOT NULL`

// EndOp removes an operation's token from a trace if the trace's hold in
// the index is still held, the hold state the operation left its objects
// in. Otherwise a concurrent hold or release changed it meanwhile: the
// token stays, and nowHeld tells the caller which state to conform its
// objects to before calling EndOp again (or leaving the token to the
// repair step). A trace no longer indexed wraps traces.ErrNotFound. Errors
// wrap traces.ErrUnavailable when the server cannot be reached.
func (db *DB) EndOp(ctx context.Context, c traces.CanvasID, id traces.TraceID, tok Token, held bool) (nowHeld bool, err error) {
	if err := db.pool.QueryRow(ctx, endOpHeldSQL, [16]byte(c), [16]byte(id), tok.t, held).Scan(&nowHeld); err != nil {
		return false, fmt.Errorf("end operation on %s/%s: %w", c, id, translate(err))
	}
	return nowHeld, nil
}

// DropOp removes an operation's token whatever the trace's state: the
// operation changed no object (it failed before writing, or its write was
// refused). Removing a token that is gone already is harmless. Errors wrap
// traces.ErrUnavailable when the server cannot be reached.
func (db *DB) DropOp(ctx context.Context, c traces.CanvasID, id traces.TraceID, tok Token) error {
	if _, err := db.pool.Exec(ctx, endOpSQL, [16]byte(c), [16]byte(id), tok.t); err != nil {
		return fmt.Errorf("drop operation on %s/%s: %w", c, id, translate(err))
	}
	return nil
}

// beginHoldSQL records a hold and a token in one statement, unless the
// canvas holds $5 other traces already (the quota); trace_tlids get held
// from the row's own tlids so listings show it from the index-only scan.
// heldAt ($3) and heldBy ($8) are the first hold's; a repeat replaces the
// reason if $4 is not empty and the end if $6 (with $7, NULL: none).
var beginHoldSQL = `
WITH q AS (
  SELECT count(*) AS n FROM (
    SELECT FROM traces WHERE canvas_id = $1 AND held_at IS NOT NULL AND trace_id <> $2 LIMIT $5
  ) h
), t AS (
  UPDATE traces SET held_at = COALESCE(held_at, $3), hold_reason = COALESCE(NULLIF($4, ''), hold_reason),
    hold_until = CASE WHEN $6 THEN $7::timestamptz ELSE hold_until END,
    held_by = CASE WHEN held_at IS NULL THEN NULLIF($8, '') ELSE held_by END,
    pending = pending || clock_timestamp()
  WHERE canvas_id = $1 AND trace_id = $2 AND (held_at IS NOT NULL OR (SELECT n FROM q) < $5)
  RETURNING tlids, held_at, hold_reason, hold_until, held_by, generation, layers, pending[cardinality(pending)] AS token
), k AS MATERIALIZED (` + traceKeys("t") + `
), tt AS (
  UPDATE trace_tlids x SET held = true FROM k
  WHERE x.canvas_id = k.canvas_id AND x.tlid = k.tlid AND x.trace_id = k.trace_id AND NOT x.held
)
SELECT t.held_at, COALESCE(t.hold_reason, ''), t.hold_until, COALESCE(t.held_by, ''), t.generation, t.layers, t.token, q.n,
  EXISTS (SELECT FROM traces WHERE canvas_id = $1 AND trace_id = $2)
FROM q LEFT JOIN t ON true`

// Hold is a held trace as the index records it.
type Hold struct {
	ID     traces.TraceID
	Reason string    // "" when none was given
	HeldAt time.Time // when the trace was first held (since its last release)
	Until  time.Time // when the hold ends by itself (GC releases it); zero: never
	By     string    // who placed it (a token's subject); "" when unknown
}

// HoldSpec is what a hold records besides its time.
type HoldSpec struct {
	// Reason replaces the recorded reason unless it is empty.
	Reason string
	// SetUntil makes Until the hold's end (zero: none); without it a new
	// hold has no end and a repeated one keeps its end.
	SetUntil bool
	Until    time.Time
	// By is who holds it; recorded with the first hold (a repeat keeps it).
	By string
}

// Holding is what BeginHold recorded.
type Holding struct {
	Hold
	Generation int64 // the trace object generation the rows describe
	Layers     int   // layer numbers 1..Layers to hold
	Token      Token
}

// BeginHold records, before any object is touched, that trace id is held:
// heldAt and h.By if it was not held yet (a repeat keeps the first ones),
// h.Reason if not empty, the end if h.SetUntil, and an operation token;
// the caller then holds the objects and calls EndOp. A canvas holding quota
// other traces already wraps traces.ErrExhausted (concurrent holds may
// overshoot the quota by their number); an unknown trace wraps
// traces.ErrNotFound. Errors wrap traces.ErrUnavailable when the server
// cannot be reached.
func (db *DB) BeginHold(ctx context.Context, c traces.CanvasID, id traces.TraceID, h HoldSpec, heldAt time.Time, quota int) (Holding, error) {
	var (
		at, until *time.Time
		out       Holding
		gen       *int64
		layers    *int32
		tok       *time.Time
		n         int64
		exists    bool
	)
	var untilArg any
	if h.SetUntil && !h.Until.IsZero() {
		untilArg = h.Until
	}
	err := db.pool.QueryRow(ctx, beginHoldSQL, [16]byte(c), [16]byte(id), heldAt, h.Reason, int64(quota), h.SetUntil, untilArg, h.By).
		Scan(&at, &out.Reason, &until, &out.By, &gen, &layers, &tok, &n, &exists)
	switch {
	case err != nil:
		return Holding{}, fmt.Errorf("hold %s/%s: %w", c, id, translate(err))
	case at != nil:
		out.ID, out.HeldAt, out.Generation, out.Layers, out.Token = id, at.UTC(), *gen, int(*layers), Token{*tok}
		if until != nil {
			out.Until = until.UTC()
		}
		return out, nil
	case !exists:
		return Holding{}, fmt.Errorf("hold %s/%s: %w", c, id, traces.ErrNotFound)
	}
	return Holding{}, traces.Public(fmt.Errorf("hold %s/%s: %w", c, id, traces.ErrExhausted),
		"canvas %s already holds %d traces, its quota: release one first", c, n)
}

// beginReleaseSQL clears a hold (its reason, end and holder too) and
// records a token in one statement; with $3 set, only a hold whose end is
// at or before $3. The row's custom_time stays: the objects get their new
// customTime only when the release reaches them (EndRelease).
var beginReleaseSQL = `
WITH t AS (
  UPDATE traces SET held_at = NULL, hold_reason = NULL, hold_until = NULL, held_by = NULL,
    pending = pending || clock_timestamp()
  WHERE canvas_id = $1 AND trace_id = $2 AND held_at IS NOT NULL
    AND ($3::timestamptz IS NULL OR hold_until <= $3::timestamptz)
  RETURNING tlids, generation, layers, pending[cardinality(pending)] AS token
), k AS MATERIALIZED (` + traceKeys("t") + `
), tt AS (
  UPDATE trace_tlids x SET held = false FROM k
  WHERE x.canvas_id = k.canvas_id AND x.tlid = k.tlid AND x.trace_id = k.trace_id AND x.held
)
SELECT t.generation, t.layers, t.token, x.unfinished IS NOT NULL, COALESCE(x.unfinished, false)
FROM (SELECT) AS one LEFT JOIN t ON true
LEFT JOIN (SELECT cardinality(pending) > 0 AS unfinished FROM traces WHERE canvas_id = $1 AND trace_id = $2) x ON true`

// Releasing is what BeginRelease recorded.
type Releasing struct {
	Held bool // false: the trace was not held; nothing was recorded
	// Unfinished is set when the trace was not held but carries an
	// operation token: a hold or release may not have reached its objects
	// (its process died), so they may still be held.
	Unfinished bool
	Generation int64
	Layers     int
	Token      Token
}

// BeginRelease records, before any object is touched, that trace id is no
// longer held, with an operation token; the caller then releases the
// objects and calls EndRelease. A trace that is not held changes nothing
// (Held false, no token; Unfinished if another operation's token is on
// it). An unknown trace wraps traces.ErrNotFound. Errors
// wrap traces.ErrUnavailable when the server cannot be reached.
func (db *DB) BeginRelease(ctx context.Context, c traces.CanvasID, id traces.TraceID) (Releasing, error) {
	return db.beginRelease(ctx, c, id, nil)
}

// BeginExpire is BeginRelease for a hold whose end has come: it records the
// release only if the trace's hold ends at or before now, so a hold that
// was extended (or made endless) meanwhile stays (Held false). Errors as
// for BeginRelease.
func (db *DB) BeginExpire(ctx context.Context, c traces.CanvasID, id traces.TraceID, now time.Time) (Releasing, error) {
	return db.beginRelease(ctx, c, id, now)
}

func (db *DB) beginRelease(ctx context.Context, c traces.CanvasID, id traces.TraceID, endedBy any) (Releasing, error) {
	var (
		gen        *int64
		layers     *int32
		tok        *time.Time
		exists     bool
		unfinished bool
	)
	if err := db.pool.QueryRow(ctx, beginReleaseSQL, [16]byte(c), [16]byte(id), endedBy).Scan(&gen, &layers, &tok, &exists, &unfinished); err != nil {
		return Releasing{}, fmt.Errorf("release %s/%s: %w", c, id, translate(err))
	}
	if !exists {
		return Releasing{}, fmt.Errorf("release %s/%s: %w", c, id, traces.ErrNotFound)
	}
	if tok == nil {
		return Releasing{Unfinished: unfinished}, nil
	}
	return Releasing{Held: true, Generation: *gen, Layers: int(*layers), Token: Token{*tok}}, nil
}

// endReleaseSQL moves custom_time forward to what the release set on the
// objects, and removes the token unless the trace was held again meanwhile.
const endReleaseSQL = `
UPDATE traces SET custom_time = GREATEST(custom_time, $4),
  pending = CASE WHEN held_at IS NULL THEN array_remove(pending, $3) ELSE pending END
WHERE canvas_id = $1 AND trace_id = $2
RETURNING held_at IS NOT NULL`

// EndRelease completes a release whose objects now have customTime at
// least customTime and no hold: custom_time moves forward to it (it stays a
// lower bound of the objects'), and the token goes unless the trace was
// held again meanwhile (nowHeld; see EndOp). Errors as for EndOp.
func (db *DB) EndRelease(ctx context.Context, c traces.CanvasID, id traces.TraceID, tok Token, customTime time.Time) (nowHeld bool, err error) {
	if err := db.pool.QueryRow(ctx, endReleaseSQL, [16]byte(c), [16]byte(id), tok.t, customTime).Scan(&nowHeld); err != nil {
		return false, fmt.Errorf("end release of %s/%s: %w", c, id, translate(err))
	}
	return nowHeld, nil
}

// reserveLayerSQL takes the next layer number and a token in one statement.
const reserveLayerSQL = `
WITH t AS (
  UPDATE traces SET layers = layers + 1, pending = pending || clock_timestamp()
  WHERE canvas_id = $1 AND trace_id = $2 AND layers < $3
  RETURNING ` + recordColumns + `, pending[cardinality(pending)] AS token
)
SELECT t.*, (SELECT layers FROM traces WHERE canvas_id = $1 AND trace_id = $2)
FROM (SELECT) AS one LEFT JOIN t ON true`

// ReserveLayer takes the next layer number of trace id (the returned
// record's Layers) and an operation token, before the layer object is
// written: the number is then the layer's alone, and a layer whose write
// failed leaves a number without an object, which reads, GC and the
// layer's deletion skip. A trace with max layers already wraps
// traces.ErrExhausted; an unknown trace traces.ErrNotFound. Errors wrap
// traces.ErrUnavailable when the server cannot be reached.
func (db *DB) ReserveLayer(ctx context.Context, c traces.CanvasID, id traces.TraceID, max int) (traces.Record, Token, error) {
	var (
		canvas, tid  *[16]byte
		root         *int64
		tlids        []int64
		ts, ct, tok  *time.Time
		gen          *int64
		layers, have *int32
		held         *bool
	)
	err := db.pool.QueryRow(ctx, reserveLayerSQL, [16]byte(c), [16]byte(id), int32(max)).
		Scan(&canvas, &tid, &root, &tlids, &ts, &gen, &ct, &layers, &held, &tok, &have)
	switch {
	case err != nil:
		return traces.Record{}, Token{}, fmt.Errorf("reserve layer of %s/%s: %w", c, id, translate(err))
	case have == nil:
		return traces.Record{}, Token{}, fmt.Errorf("reserve layer of %s/%s: %w", c, id, traces.ErrNotFound)
	case tok == nil:
		return traces.Record{}, Token{}, fmt.Errorf("add layer to %s: the trace has %d layers, the most it may have; replace it (PUT) to start afresh: %w",
			id, *have, traces.ErrExhausted)
	}
	r := traces.Record{
		Canvas: c, ID: id, RootTLID: traces.TLID(*root), TLIDs: toTLIDs(tlids), Timestamp: ts.UTC(),
		Generation: *gen, CustomTime: ct.UTC(), Layers: int(*layers), Held: *held,
	}
	return r, Token{*tok}, nil
}

// commitLayerSQL links a layer's tlids to its trace if the rows still
// describe generation $3, and removes the token if the hold is still $6
// (or the trace was replaced: the layer is stale, nothing to repair).
var commitLayerSQL = `
WITH up AS (
  UPDATE traces SET
    tlids = CASE WHEN generation = $3
      THEN ARRAY(SELECT DISTINCT x.tlid FROM unnest(tlids || $4::bigint[]) AS x(tlid) ORDER BY x.tlid)
      ELSE tlids END,
    pending = CASE WHEN generation <> $3 OR (held_at IS NOT NULL) = $6 THEN array_remove(pending, $5) ELSE pending END
  WHERE canvas_id = $1 AND trace_id = $2
  RETURNING generation = $3 AS same, ts, root_tlid, held_at IS NOT NULL AS held, custom_time
), it AS (
  INSERT INTO trace_tlids (canvas_id, tlid, trace_id, ts, root_tlid, held)
  SELECT $1, u.tlid, $2, up.ts, up.root_tlid, up.held FROM up, unnest($4::bigint[]) AS u(tlid)
  WHERE up.same
  ON CONFLICT DO NOTHING
), tl AS (
  -- The trace may become a keeper of a new toplevel however old it is: the
  -- toplevel is due by the trace's customTime, not the layer's.
  ` + upsertToplevels("up, unnest($4::bigint[])", "(SELECT custom_time FROM up)", "(SELECT ts FROM up)", "$7", "up.same") + `
)
SELECT (SELECT same FROM up), (SELECT held FROM up), ARRAY(SELECT tlid FROM tl WHERE due)`

// CommitLayer links the tlids of a layer written for generation to its
// trace, in one round trip: the traces row's tlids become the union, each
// new toplevel gets its trace_tlids row, and the toplevels bookkeeping
// (upsertToplevels with the trace's customTime; now is the writer's clock)
// makes the toplevels that may have gained an old keeper due. It removes
// the layer's token unless the trace's hold is no longer held (the state the
// layer object was left in); nowHeld says which it is. Rows describing
// another generation (replaced meanwhile) wrap traces.ErrPreconditionFailed
// and change nothing but the token; an unknown trace wraps
// traces.ErrNotFound. Errors wrap traces.ErrUnavailable when the server
// cannot be reached. Safe for concurrent use.
func (db *DB) CommitLayer(ctx context.Context, c traces.CanvasID, id traces.TraceID, generation int64, tlids []traces.TLID, tok Token, held bool, now time.Time) (nowHeld bool, due []traces.TLID, err error) {
	a := make([]int64, len(tlids))
	for i, t := range tlids {
		a[i] = int64(t)
	}
	slices.Sort(a) // same lock order as PutTrace: no deadlocks between them
	a = slices.Compact(a)
	var (
		same, h *bool
		l       []int64
	)
	if err := db.pool.QueryRow(ctx, commitLayerSQL, [16]byte(c), [16]byte(id), generation, a, tok.t, held, now).Scan(&same, &h, &l); err != nil {
		return false, nil, fmt.Errorf("commit layer of %s/%s: %w", c, id, translate(err))
	}
	switch {
	case same == nil:
		return false, nil, fmt.Errorf("commit layer of %s/%s: trace not indexed: %w", c, id, traces.ErrNotFound)
	case !*same:
		return false, nil, fmt.Errorf("commit layer of %s/%s: the trace was replaced: %w", c, id, traces.ErrPreconditionFailed)
	}
	return *h, toTLIDs(l), nil
}

// dropTokensSQL removes the tokens at or before a cutoff.
const dropTokensSQL = `
UPDATE traces SET pending = ARRAY(SELECT p FROM unnest(pending) AS p WHERE p > $3 ORDER BY p)
WHERE canvas_id = $1 AND trace_id = $2 AND pending[1] <= $3`

// Reindex rewrites the rows of trace r.ID to exactly what its objects say
// (r, derived by the caller from the trace object and its layers): tlids,
// root, timestamp, generation and customTime, stale trace_tlids rows
// removed (their toplevels made due), missing ones added and linked. Rows
// of a newer generation are left alone; rows of the same generation keep
// their layer count and hold. It then removes the tokens at or before
// cutoff (Pending's), in the same round trip. Errors wrap
// traces.ErrUnavailable when the server cannot be reached.
func (db *DB) Reindex(ctx context.Context, r traces.Record, now, cutoff time.Time) (Replaced, error) {
	out, err := db.rewrite(ctx, r, now, false, true, func(b *pgx.Batch) {
		b.Queue(dropTokensSQL, [16]byte(r.Canvas), [16]byte(r.ID), cutoff)
	})
	if err != nil {
		return Replaced{}, fmt.Errorf("reindex %s/%s: %w", r.Canvas, r.ID, err)
	}
	return out, nil
}

// DropTokens removes the tokens of trace id at or before cutoff (a trace
// the repair step found consistent, or gone). Errors wrap
// traces.ErrUnavailable when the server cannot be reached.
func (db *DB) DropTokens(ctx context.Context, c traces.CanvasID, id traces.TraceID, cutoff time.Time) error {
	if _, err := db.pool.Exec(ctx, dropTokensSQL, [16]byte(c), [16]byte(id), cutoff); err != nil {
		return fmt.Errorf("drop tokens of %s/%s: %w", c, id, translate(err))
	}
	return nil
}

// PendingTrace is a trace with an operation token older than the grace.
type PendingTrace struct {
	Canvas traces.CanvasID
	ID     traces.TraceID
}

// pendingSQL reads traces_pending, oldest token first.
const pendingSQL = `
SELECT canvas_id, trace_id, clock_timestamp() - $1::interval FROM traces
WHERE cardinality(pending) > 0 AND pending[1] < clock_timestamp() - $1::interval
ORDER BY pending[1] LIMIT $2`

// Pending returns up to limit traces, across canvases, whose oldest
// operation token is older than grace on the database's clock, oldest
// first, and the cutoff to pass to Reindex or DropTokens for them: tokens
// at or before it belong to operations that can no longer be running.
// Errors wrap traces.ErrUnavailable when the server cannot be reached.
func (db *DB) Pending(ctx context.Context, grace time.Duration, limit int) ([]PendingTrace, time.Time, error) {
	rows, err := db.pool.Query(ctx, pendingSQL, grace, int64(limit))
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("pending operations: %w", translate(err))
	}
	defer rows.Close()
	var (
		out        []PendingTrace
		c, id      [16]byte
		cutoff, cu time.Time
	)
	for rows.Next() {
		if err := rows.Scan(&c, &id, &cu); err != nil {
			return nil, time.Time{}, fmt.Errorf("pending operations: %w", translate(err))
		}
		if cutoff.IsZero() || cu.Before(cutoff) {
			cutoff = cu
		}
		out = append(out, PendingTrace{Canvas: c, ID: id})
	}
	if err := rows.Err(); err != nil {
		return nil, time.Time{}, fmt.Errorf("pending operations: %w", translate(err))
	}
	return out, cutoff, nil
}

// MarkCanvasDeleted records that canvas c is being deleted, before any of
// its objects or rows go: from then on no index write creates rows of c.
// Repeating it keeps the first time. Errors wrap traces.ErrUnavailable when
// the server cannot be reached.
func (db *DB) MarkCanvasDeleted(ctx context.Context, c traces.CanvasID, at time.Time) error {
	if _, err := db.pool.Exec(ctx, `INSERT INTO deleted_canvases (canvas_id, deleted_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`, [16]byte(c), at); err != nil {
		return fmt.Errorf("mark canvas %s deleted: %w", c, translate(err))
	}
	return nil
}
