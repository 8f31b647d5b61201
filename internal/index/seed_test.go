package index

import (
	"context"
	"encoding/binary"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/tracegw/tracegw/internal/traces"
)

// Seeding for the plan tests and the benchmarks: rows COPYed straight into
// the tables, as consistent as the index's own writes leave them (a traces
// row per trace, a trace_tlids row per toplevel it touched, a live
// toplevels row per toplevel).

// copier is what seeding needs of a connection or pool.
type copier interface {
	CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error)
	Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
}

// seedTrace is one trace to seed.
type seedTrace struct {
	canvas traces.CanvasID
	root   int64
	tlids  []int64 // root included
	ts     time.Time
	held   bool
}

// seedID is a deterministic UUIDv7 for the i-th seeded trace at ts: the
// generator is called once per table, and both must agree.
func seedID(ts time.Time, i int) [16]byte {
	var u [16]byte
	ms := uint64(ts.UnixMilli())
	binary.BigEndian.PutUint16(u[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(u[2:6], uint32(ms))
	binary.BigEndian.PutUint64(u[8:16], uint64(i)*0x9e3779b97f4a7c15)
	u[6], u[7] = 0x70|byte(i>>8)&0x0f, byte(i)
	u[8] = 0x80 | u[8]&0x3f
	return u
}

// seedTraces COPYs n traces made by gen into traces and trace_tlids, then
// adds a live toplevels row for every toplevel they touch. first numbers
// the traces for seedID: seeds of one database must not overlap.
func seedTraces(ctx context.Context, conn copier, first, n int, gen func(i int) seedTrace) error {
	i := 0
	_, err := conn.CopyFrom(ctx, pgx.Identifier{"traces"},
		[]string{"canvas_id", "trace_id", "root_tlid", "tlids", "ts", "generation", "custom_time", "held_at"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			s := gen(i)
			var held any
			if s.held {
				held = s.ts
			}
			row := []any{[16]byte(s.canvas), seedID(s.ts, first+i), s.root, s.tlids, s.ts, int64(i + 1), s.ts, held}
			i++
			return row, nil
		}))
	if err != nil {
		return err
	}
	i, k := 0, 0
	var cur seedTrace
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"trace_tlids"},
		[]string{"canvas_id", "tlid", "trace_id", "ts", "root_tlid", "held"},
		pgx.CopyFromFunc(func() ([]any, error) {
			for k == len(cur.tlids) {
				if i == n {
					return nil, nil
				}
				cur, k = gen(i), 0
				i++
			}
			k++
			return []any{[16]byte(cur.canvas), cur.tlids[k-1], seedID(cur.ts, first+i-1), cur.ts, cur.root, cur.held}, nil
		}))
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, `INSERT INTO toplevels (canvas_id, tlid, renew_after)
SELECT canvas_id, tlid, min(ts) FROM trace_tlids GROUP BY canvas_id, tlid
ON CONFLICT (canvas_id, tlid) DO NOTHING`)
	return err
}

// seedGrid seeds canvases×tlids×perTLID traces (tlid k+1 of canvas i gets
// perTLID traces one minute apart, as its root; one in 97 is held) and
// returns the canvas IDs (canvasID(1) on).
func seedGrid(ctx context.Context, conn copier, canvases, tlids, perTLID int) ([]traces.CanvasID, error) {
	cs := make([]traces.CanvasID, canvases)
	for i := range cs {
		cs[i] = canvasID(byte(i + 1))
	}
	err := seedTraces(ctx, conn, 0, canvases*tlids*perTLID, func(i int) seedTrace {
		c, k, j := i/(tlids*perTLID), i/perTLID%tlids, i%perTLID
		ts := base.Add(time.Duration(j)*time.Minute + time.Duration(k)*time.Millisecond)
		return seedTrace{canvas: cs[c], root: int64(k + 1), tlids: []int64{int64(k + 1)}, ts: ts, held: j%97 == 0}
	})
	return cs, err
}
