package index

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tracegw/tracegw/internal/traces"
)

// The GC queries. Every one leads with canvas_id except DueCanvases, the
// discovery of canvases with due toplevels across all canvases (it reads the
// partial index toplevels_due). None deletes trace data: GC only moves
// custom_time and renew_after forward (ForgetToplevel, in execute.go, marks
// a toplevel deleted; Remove drops the rows of an object found gone).

const dueCanvasesSQL = `
SELECT DISTINCT canvas_id FROM toplevels
WHERE deleted_at IS NULL AND renew_after < $1 AND canvas_id > $2
ORDER BY canvas_id
LIMIT $3`

// DueCanvases returns up to limit canvases, in ID order after the canvas
// after (the zero ID to start), that have a live toplevel whose renew_after
// is before before. It reads only the due part of toplevels_due, so its cost
// follows the number of due toplevels, not the number stored. Errors wrap
// traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) DueCanvases(ctx context.Context, before time.Time, after traces.CanvasID, limit int) ([]traces.CanvasID, error) {
	rows, err := db.pool.Query(ctx, dueCanvasesSQL, before, [16]byte(after), int64(limit))
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
// first. A toplevel with no traces has none.
type DueToplevel struct {
	TLID    traces.TLID
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
// latest $3 traces by an index-only backward scan of trace_tlids' primary
// key, joined to traces for what renewal needs.
const keepersSQL = `
SELECT d.tlid, k.trace_id, t.generation, t.custom_time, t.layers, t.held_at IS NOT NULL
FROM toplevels d
LEFT JOIN LATERAL (
  SELECT x.trace_id FROM trace_tlids x
  WHERE x.canvas_id = $1 AND x.tlid = d.tlid
  ORDER BY x.trace_id DESC
  LIMIT $3
) k ON true
LEFT JOIN traces t ON t.canvas_id = $1 AND t.trace_id = k.trace_id
WHERE d.canvas_id = $1 AND d.deleted_at IS NULL AND d.renew_after < $2
ORDER BY d.tlid, k.trace_id DESC`

// Keepers returns the live toplevels of canvas whose renew_after is before
// before, each with its latest keep traces, and those traces deduplicated
// (a trace can be a keeper of several toplevels). It is one query; its cost
// follows the number of due toplevels of the canvas times keep. Errors wrap
// traces.ErrUnavailable when the server cannot be reached. Safe for
// concurrent use.
func (db *DB) Keepers(ctx context.Context, canvas traces.CanvasID, before time.Time, keep int) (Keepers, error) {
	rows, err := db.pool.Query(ctx, keepersSQL, [16]byte(canvas), before, int64(keep))
	if err != nil {
		return Keepers{}, fmt.Errorf("keepers of %s: %w", canvas, translate(err))
	}
	defer rows.Close()
	var (
		out    Keepers
		seen   = map[traces.TraceID]bool{}
		tlid   int64
		id     *[16]byte
		gen    *int64
		ct     *time.Time
		layers *int32
		held   *bool
	)
	for rows.Next() {
		if err := rows.Scan(&tlid, &id, &gen, &ct, &layers, &held); err != nil {
			return Keepers{}, fmt.Errorf("keepers of %s: %w", canvas, translate(err))
		}
		if n := len(out.Toplevels); n == 0 || out.Toplevels[n-1].TLID != traces.TLID(tlid) {
			out.Toplevels = append(out.Toplevels, DueToplevel{TLID: traces.TLID(tlid)})
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

const setRenewAfterSQL = `
UPDATE toplevels t SET renew_after = v.renew_after
FROM unnest($2::bigint[], $3::timestamptz[]) AS v(tlid, renew_after)
WHERE t.canvas_id = $1 AND t.tlid = v.tlid`

// SetRenewAfter sets the renew_after of each toplevel tlids[i] of canvas to
// values[i]: the oldest customTime among its keepers after a GC pass, so the
// toplevel is not looked at again until one of them ages. tlids and values
// must have the same length. Errors wrap traces.ErrUnavailable when the
// server cannot be reached. Safe for concurrent use.
func (db *DB) SetRenewAfter(ctx context.Context, canvas traces.CanvasID, tlids []traces.TLID, values []time.Time) error {
	if len(tlids) != len(values) {
		return fmt.Errorf("set renew_after of %s: %d tlids but %d values", canvas, len(tlids), len(values))
	}
	if len(tlids) == 0 {
		return nil
	}
	a := make([]int64, len(tlids))
	for i, t := range tlids {
		a[i] = int64(t)
	}
	if _, err := db.pool.Exec(ctx, setRenewAfterSQL, [16]byte(canvas), a, values); err != nil {
		return fmt.Errorf("set renew_after of %d toplevels of %s: %w", len(tlids), canvas, translate(err))
	}
	return nil
}
