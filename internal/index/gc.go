package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tracegw/tracegw/internal/traces"
)

// The GC queries. Every one leads with canvas_id except DueCanvases, the
// discovery of canvases with due toplevels across all canvases (it reads the
// partial index toplevels_due). None deletes trace data: GC only moves
// custom_time and renew_after forward (ForgetToplevel, in execute.go, marks
// a toplevel deleted; Remove drops the rows of an object found gone).

// dueCanvasesSQL reads the due part of toplevels_due once; the hash
// aggregate keeps one entry per canvas.
const dueCanvasesSQL = `
SELECT DISTINCT canvas_id FROM toplevels
WHERE deleted_at IS NULL AND renew_after < $1`

// DueCanvases returns every canvas that has a live toplevel whose
// renew_after is before before. It reads only the due part of
// toplevels_due, once, so its cost follows the number of due toplevels, not
// the number stored. Errors wrap traces.ErrUnavailable when the server
// cannot be reached. Safe for concurrent use.
func (db *DB) DueCanvases(ctx context.Context, before time.Time) ([]traces.CanvasID, error) {
	rows, err := db.pool.Query(ctx, dueCanvasesSQL, before)
	if err != nil {
		return nil, fmt.Errorf("due canvases: %w", translate(err))
	}
	defer rows.Close()
	var out []traces.CanvasID
	var c [16]byte
	for rows.Next() {
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("due canvases: %w", translate(err))
		}
		out = append(out, traces.CanvasID(c))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("due canvases: %w", translate(err))
	}
	slices.SortFunc(out, func(a, b traces.CanvasID) int { return bytes.Compare(a[:], b[:]) })
	return out, nil
}

// Claim is a GC replica's hold on one canvas: a session-level advisory lock
// on a connection taken out of the pool for as long as the claim lasts. If
// the connection dies the server releases the lock by itself.
type Claim struct {
	conn *pgxpool.Conn
	key  int64
}

// gcLockKey maps a canvas to its advisory lock key. The hash is salted so
// the key space does not collide with other advisory locks of the database.
func gcLockKey(c traces.CanvasID) int64 {
	h := fnv.New64a()
	h.Write([]byte("tracegw gc canvas\x00"))
	h.Write(c[:])
	return int64(binary.BigEndian.Uint64(h.Sum(nil)))
}

// ClaimCanvas tries to claim canvas for one GC pass without waiting
// (pg_try_advisory_lock), on a connection of a small pool of its own, so a
// pass's claims never starve the queries it runs while holding them. ok is false if another session holds it: the
// caller skips the canvas, which that session is processing. On success the
// caller must call Release. Errors wrap traces.ErrUnavailable when the
// server cannot be reached. Safe for concurrent use.
func (db *DB) ClaimCanvas(ctx context.Context, canvas traces.CanvasID) (c *Claim, ok bool, err error) {
	claims, err := db.claimPool(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("claim canvas %s: %w", canvas, translate(err))
	}
	conn, err := claims.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("claim canvas %s: %w", canvas, translate(err))
	}
	key := gcLockKey(canvas)
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("claim canvas %s: %w", canvas, translate(err))
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return &Claim{conn: conn, key: key}, true, nil
}

// Release gives the claim up and returns its connection to the pool. If the
// unlock fails the connection is closed instead, which releases the lock
// too. It uses its own short timeout, so it works after ctx ends. Release is
// idempotent.
func (c *Claim) Release() {
	if c == nil || c.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := c.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, c.key); err != nil {
		_ = c.conn.Hijack().Close(ctx)
	} else {
		c.conn.Release()
	}
	c.conn = nil
}

// Keeper is a trace that is among the latest of at least one due toplevel.
type Keeper struct {
	ID         traces.TraceID
	Generation int64
	CustomTime time.Time // oldest customTime tracegw set on the object and its layers
	Layers     int
	Held       bool
}

// DueToplevel is a due toplevel and its latest traces (its keepers), newest
// first. A toplevel with no traces has none. Rev is the toplevel's rev as
// read with them: SetRenewAfter changes nothing if it moved since.
type DueToplevel struct {
	TLID    traces.TLID
	Rev     int64
	Keepers []traces.TraceID
}

// Keepers is the result of DB.Keepers.
type Keepers struct {
	Toplevels []DueToplevel
	// Traces holds each keeper once, however many toplevels keep it, in
	// trace ID order.
	Traces []Keeper
}

// keepersSQL reads, in one round trip, the live toplevels of a canvas whose
// renew_after is before $2 (index toplevels_canvas_due) and, for each, its
// latest keep traces by an index-only backward scan of trace_tlids' primary
// key, joined to traces for what renewal needs. keep is the canvas's own
// (canvas_policy) or the default $3, read in the same statement (one
// snapshot) as the toplevels' rev: SetCanvasKeep changes a canvas's keep
// and bumps every live toplevel's rev in one transaction, so a pass that
// read a toplevel with the old keep cannot record its verdict.
const keepersSQL = `
WITH k AS (SELECT COALESCE((SELECT keep FROM canvas_policy WHERE canvas_id = $1), $3::int) AS keep)
SELECT d.tlid, d.rev, k.trace_id, t.generation, t.custom_time, t.layers, t.held_at IS NOT NULL
FROM toplevels d
LEFT JOIN LATERAL (
  SELECT x.trace_id FROM trace_tlids x
  WHERE x.canvas_id = $1 AND x.tlid = d.tlid
  ORDER BY x.trace_id DESC
  LIMIT (SELECT keep FROM k)
) k ON true
LEFT JOIN traces t ON t.canvas_id = $1 AND t.trace_id = k.trace_id
WHERE d.canvas_id = $1 AND d.deleted_at IS NULL AND (d.renew_after < $2 OR d.tlid = ANY ($4::bigint[]))
ORDER BY d.tlid, k.trace_id DESC`

// Keepers returns the live toplevels of canvas whose renew_after is before
// before, and those of also whatever their renew_after, each with its rev
// and its latest keep traces, and those traces deduplicated (a trace can be
// a keeper of several toplevels). keep is the default: a canvas with a
// keep-N of its own (SetCanvasKeep) is read with that. It is one query; its
// cost follows the number of due toplevels of the canvas times keep.
// Errors wrap traces.ErrUnavailable when the server cannot be reached. Safe
// for concurrent use.
func (db *DB) Keepers(ctx context.Context, canvas traces.CanvasID, before time.Time, keep int, also []traces.TLID) (Keepers, error) {
	extra := make([]int64, len(also))
	for i, t := range also {
		extra[i] = int64(t)
	}
	rows, err := db.pool.Query(ctx, keepersSQL, [16]byte(canvas), before, int32(keep), extra)
	if err != nil {
		return Keepers{}, fmt.Errorf("keepers of %s: %w", canvas, translate(err))
	}
	defer rows.Close()
	var (
		out    Keepers
		seen   = map[traces.TraceID]bool{}
		tlid   int64
		rev    int64
		id     *[16]byte
		gen    *int64
		ct     *time.Time
		layers *int32
		held   *bool
	)
	for rows.Next() {
		if err := rows.Scan(&tlid, &rev, &id, &gen, &ct, &layers, &held); err != nil {
			return Keepers{}, fmt.Errorf("keepers of %s: %w", canvas, translate(err))
		}
		if n := len(out.Toplevels); n == 0 || out.Toplevels[n-1].TLID != traces.TLID(tlid) {
			out.Toplevels = append(out.Toplevels, DueToplevel{TLID: traces.TLID(tlid), Rev: rev})
		}
		// A trace_tlids row without its traces row (gen is NULL) cannot
		// happen, as both are written and removed in one statement; skip it.
		if id == nil || gen == nil {
			continue
		}
		tid := traces.TraceID(*id)
		top := &out.Toplevels[len(out.Toplevels)-1]
		top.Keepers = append(top.Keepers, tid)
		if seen[tid] {
			continue
		}
		seen[tid] = true
		out.Traces = append(out.Traces, Keeper{
			ID: tid, Generation: *gen, CustomTime: ct.UTC(), Layers: int(*layers), Held: *held,
		})
	}
	if err := rows.Err(); err != nil {
		return Keepers{}, fmt.Errorf("keepers of %s: %w", canvas, translate(err))
	}
	return out, nil
}

// markRenewedSQL only moves custom_time forward: it stays a lower bound of
// the objects' customTime whatever order concurrent writers commit in.
const markRenewedSQL = `
UPDATE traces SET custom_time = $3
WHERE canvas_id = $1 AND trace_id = ANY($2::uuid[]) AND custom_time < $3`

// MarkRenewed records that the objects of the traces ids (the trace and all
// its layers) now have a customTime of at least t. A trace already newer, or
// no longer indexed, is left alone. Errors wrap traces.ErrUnavailable when
// the server cannot be reached. Safe for concurrent use.
func (db *DB) MarkRenewed(ctx context.Context, canvas traces.CanvasID, ids []traces.TraceID, t time.Time) error {
	if len(ids) == 0 {
		return nil
	}
	a := make([][16]byte, len(ids))
	for i, id := range ids {
		a[i] = id
	}
	if _, err := db.pool.Exec(ctx, markRenewedSQL, [16]byte(canvas), a, t); err != nil {
		return fmt.Errorf("mark %d traces of %s renewed: %w", len(ids), canvas, translate(err))
	}
	return nil
}

// RenewAfter is GC's verdict on one toplevel after a pass: its next
// renew_after, or, for a toplevel without traces (Empty), that it may go.
type RenewAfter struct {
	TLID  traces.TLID
	Rev   int64 // the rev Keepers read
	Value time.Time
	Empty bool
}

// deleteEmptySQL deletes toplevels GC found empty on an earlier pass (at
// least $4 ago on the database's clock) and again now, unchanged since.
const deleteEmptySQL = `
DELETE FROM toplevels t
USING unnest($2::bigint[], $3::bigint[]) AS v(tlid, rev)
WHERE t.canvas_id = $1 AND t.tlid = v.tlid AND t.rev = v.rev
  AND t.empty_since < clock_timestamp() - $4::interval
  AND NOT EXISTS (SELECT FROM trace_tlids x WHERE x.canvas_id = $1 AND x.tlid = t.tlid)`

// setRenewAfterSQL writes renew_after only where rev is still what GC read:
// a toplevel whose keepers changed meanwhile (a link of an old trace, a
// dropped link, a forget or a revival bumped rev) stays as that write left
// it, due, and the next pass reads it again.
const setRenewAfterSQL = `
UPDATE toplevels t SET renew_after = v.renew_after,
  empty_since = CASE WHEN v.empty THEN COALESCE(t.empty_since, clock_timestamp()) END
FROM unnest($2::bigint[], $3::bigint[], $4::timestamptz[], $5::bool[]) AS v(tlid, rev, renew_after, empty)
WHERE t.canvas_id = $1 AND t.tlid = v.tlid AND t.rev = v.rev`

// SetRenewAfter records a pass's verdicts on toplevels of canvas in one
// round trip (their rows locked first, in tlid order), each only if the toplevel's rev is still the one Keepers
// read. A toplevel found Empty is marked so (saves then stop relying on the
// row) and deleted on a later pass if it was marked at least emptyGrace ago
// (database clock; longer than any index write takes) and is still empty:
// a save that decided not to touch the row before the mark has committed by
// then, and one after it touches the row. Errors wrap
// traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) SetRenewAfter(ctx context.Context, canvas traces.CanvasID, vs []RenewAfter, emptyGrace time.Duration) error {
	if len(vs) == 0 {
		return nil
	}
	var (
		tlids, revs, etlids, erevs []int64
		values                     []time.Time
		empty                      []bool
	)
	for _, v := range vs {
		tlids, revs, values, empty = append(tlids, int64(v.TLID)), append(revs, v.Rev), append(values, v.Value), append(empty, v.Empty)
		if v.Empty {
			etlids, erevs = append(etlids, int64(v.TLID)), append(erevs, v.Rev)
		}
	}
	err := db.sendBatch(ctx, func() *pgx.Batch {
		b := &pgx.Batch{}
		b.Queue(lockToplevelsSQL, [16]byte(canvas), tlids)
		if len(etlids) > 0 {
			b.Queue(deleteEmptySQL, [16]byte(canvas), etlids, erevs, emptyGrace)
		}
		b.Queue(setRenewAfterSQL, [16]byte(canvas), tlids, revs, values, empty)
		return b
	})
	if err != nil {
		return fmt.Errorf("set renew_after of %d toplevels of %s: %w", len(vs), canvas, translate(err))
	}
	return nil
}
