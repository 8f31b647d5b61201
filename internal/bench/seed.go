package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// The seeded index: the queried canvas has seedBig toplevels with
// seedBigN traces each and seedSmall with seedSmallN; seedOthers more
// canvases have 1000 toplevels with 50 traces each. 1,000,000 traces, each
// with one trace_tlids row.
const (
	seedBig, seedBigN     = 10, 10_000
	seedSmall, seedSmallN = 2_000, 25
	seedOthers            = 17
	seedOtherTLIDs        = 1_000
	seedOtherN            = 50
	seedSmallBase         = 100 // tlids of the small toplevels start here
)

// seedCanvas returns the i-th seeded canvas ID; IDs grow with i, so rows
// generated in canvas order arrive in primary-key order.
func seedCanvas(i int) traces.CanvasID {
	var u traces.CanvasID
	copy(u[:], []byte{0xb0, 0x5e, 0xed, 0x00, 0, 0, 0x40, 0, 0x80})
	binary.BigEndian.PutUint32(u[12:], uint32(i))
	return u
}

// seedRow is one seeded trace.
type seedRow struct {
	canvas traces.CanvasID
	id     traces.TraceID
	tlid   int64
	ts     time.Time
	gen    int64
}

// seedRows calls emit for every seeded trace in primary-key order of both
// tables: canvas, then tlid, then trace ID (one millisecond apart, so
// UUIDv7 IDs grow with time across the whole seed and traces_by_id is
// appended to as well).
func seedRows(base time.Time, emit func(seedRow)) {
	n := 0
	one := func(c traces.CanvasID, tlid int64) {
		ts := base.Add(time.Duration(n) * time.Millisecond)
		emit(seedRow{canvas: c, id: traces.NewTraceID(ts), tlid: tlid, ts: ts, gen: int64(1000 + n)})
		n++
	}
	q := seedCanvas(0)
	for t := range seedBig {
		for range seedBigN {
			one(q, int64(1+t))
		}
	}
	for t := range seedSmall {
		for range seedSmallN {
			one(q, int64(seedSmallBase+t))
		}
	}
	for c := 1; c <= seedOthers; c++ {
		cv := seedCanvas(c)
		for t := range seedOtherTLIDs {
			for range seedOtherN {
				one(cv, int64(1+t))
			}
		}
	}
}

// seedIndex COPYs the seeded traces into traces and trace_tlids (two
// connections at once) with FREEZE, so the rows are all-visible at once as
// they would be on a live, autovacuumed index (index-only scans need the
// visibility map), then ANALYZEs both.
// It returns the row count and up to keep deletions of traces outside the
// queried canvas, for the notify benchmark.
func seedIndex(ctx context.Context, url string, keep int) (int, []index.Deletion, error) {
	base := time.Now().Add(-3 * time.Hour).UTC().Truncate(time.Millisecond)
	var rows []seedRow
	seedRows(base, func(r seedRow) { rows = append(rows, r) })
	var dels []index.Deletion
	for _, r := range rows {
		if r.canvas != seedCanvas(0) && len(dels) < keep {
			dels = append(dels, index.Deletion{Canvas: r.canvas, ID: r.id, Generation: r.gen})
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	copyTable := func(table, cols string, row func(b []byte, r seedRow) []byte) {
		g.Go(func() error {
			return copyFreeze(gctx, url, table, cols, len(rows), func(b []byte, i int) []byte { return row(b, rows[i]) })
		})
	}
	copyTable("traces", "canvas_id, trace_id, root_tlid, tlids, ts, generation, custom_time, layers",
		func(b []byte, r seedRow) []byte {
			ts := r.ts.Format(pgTime)
			return fmt.Appendf(b, "%s,%s,%d,{%d},%s,%d,%s,0\n", r.canvas, r.id, r.tlid, r.tlid, ts, r.gen, ts)
		})
	copyTable("trace_tlids", "canvas_id, tlid, trace_id, ts, root_tlid",
		func(b []byte, r seedRow) []byte {
			return fmt.Appendf(b, "%s,%d,%s,%s,%d\n", r.canvas, r.tlid, r.id, r.ts.Format(pgTime), r.tlid)
		})
	if err := g.Wait(); err != nil {
		return 0, nil, err
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, nil, err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, `ANALYZE traces, trace_tlids`); err != nil {
		return 0, nil, fmt.Errorf("analyze: %w", err)
	}
	return len(rows), dels, nil
}

const pgTime = "2006-01-02 15:04:05.000Z07:00"

// copyFreeze empties table and COPYs n CSV rows into it in one transaction
// with FREEZE. row appends row i to b.
func copyFreeze(ctx context.Context, url, table, cols string, n int, row func(b []byte, i int) []byte) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, "TRUNCATE "+table); err != nil {
		return fmt.Errorf("truncate %s: %w", table, err)
	}
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, 0, 1<<20)
		for i := range n {
			buf = row(buf, i)
			if len(buf) > 1<<20-256 {
				if _, err := pw.Write(buf); err != nil {
					return
				}
				buf = buf[:0]
			}
		}
		_, _ = pw.Write(buf)
		pw.Close()
	}()
	_, err = conn.PgConn().CopyFrom(ctx, pr, "COPY "+table+" ("+cols+") FROM STDIN WITH (FORMAT csv, FREEZE)")
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return fmt.Errorf("copy %s: %w", table, err)
	}
	return tx.Commit(ctx)
}
