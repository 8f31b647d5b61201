package index

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// The benchmark data set: trace_tlids rows only (Recent and RecentMany read
// nothing else). Canvas 1 has the hot toplevel and the 200 toplevels of
// RecentMany; 100 other canvases fill the table past a million rows.
const (
	benchKey     = "index_bench_v1" // bump when seedBench changes
	benchHotTLID = 1_000_000        // canvas 1: 10,000 traces
	benchHot     = 10_000
	benchTLIDs   = 200 // canvas 1: tlids 1..200, 50 traces each
	benchPer     = 50
)

func benchDB(b *testing.B) (*DB, traces.CanvasID) {
	b.Helper()
	start := time.Now()
	url := testutil.PGSeeded(b, benchKey, seedBench)
	b.Logf("seeded database ready in %v", time.Since(start).Round(time.Millisecond))
	db, err := Open(b.Context(), url, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	return db, canvasID(1)
}

func seedBench(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	// 100 canvases × 500 tlids × 20 traces = 1,000,000 rows (canvas IDs 1..100).
	cs, err := seedTraceTLIDs(ctx, conn, 100, 500, 20)
	if err != nil {
		return err
	}
	// Canvas 1 again: the hot toplevel and 200 toplevels of 50 traces.
	type row struct {
		tlid int64
		ts   time.Time
	}
	var rows []row
	for j := range benchHot {
		rows = append(rows, row{benchHotTLID, base.Add(time.Duration(j) * time.Second)})
	}
	for k := 1; k <= benchTLIDs; k++ {
		for j := range benchPer {
			rows = append(rows, row{int64(benchHotTLID + k), base.Add(time.Duration(j)*time.Minute + time.Duration(k)*time.Millisecond)})
		}
	}
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"trace_tlids"},
		[]string{"canvas_id", "tlid", "trace_id", "ts", "root_tlid"},
		pgx.CopyFromSlice(len(rows), func(i int) ([]any, error) {
			r := rows[i]
			return []any{[16]byte(cs[0]), r.tlid, [16]byte(traces.NewTraceID(r.ts)), r.ts, int64(benchHotTLID)}, nil
		}))
	if err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "VACUUM (ANALYZE, FREEZE) trace_tlids")
	return err
}

func BenchmarkPutTrace(b *testing.B) {
	for _, n := range []int{1, 10} {
		b.Run(fmt.Sprintf("tlids=%d", n), func(b *testing.B) {
			db := newDB(b)
			c := canvasID(1)
			tlids := make([]traces.TLID, n)
			for i := range tlids {
				tlids[i] = traces.TLID(i + 1)
			}
			i := 0
			b.ReportAllocs()
			for b.Loop() {
				i++
				ts := base.Add(time.Duration(i) * time.Millisecond)
				r := traces.Record{Canvas: c, ID: traces.NewTraceID(ts), RootTLID: 1, TLIDs: tlids,
					Timestamp: ts, Generation: int64(i), CustomTime: ts}
				if _, err := db.PutTrace(b.Context(), r, r.CustomTime); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRecent(b *testing.B) {
	db, c := benchDB(b)
	for _, limit := range []int{10, 100} {
		b.Run(fmt.Sprintf("limit=%d", limit), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := db.Recent(b.Context(), c, benchHotTLID, limit)
				if err != nil || len(got) != limit {
					b.Fatalf("Recent = %d items, %v", len(got), err)
				}
			}
		})
	}
}

func BenchmarkRecentMany(b *testing.B) {
	db, c := benchDB(b)
	tlids := make([]traces.TLID, benchTLIDs)
	for k := range tlids {
		tlids[k] = traces.TLID(benchHotTLID + 1 + k)
	}
	b.Run(fmt.Sprintf("toplevels=%d", benchTLIDs), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := db.RecentMany(b.Context(), c, tlids, 10)
			if err != nil || len(got) != benchTLIDs || len(got[tlids[0]]) != 10 {
				b.Fatalf("RecentMany = %d toplevels, %v", len(got), err)
			}
		}
	})
}

// BenchmarkPutTraceWide indexes traces that touch many toplevels, the
// shape the API's limits allow (10,000 tlids): "new" touches toplevels the
// index has never seen (an insert each), "fresh" the same ones again with a
// fresh customTime (no row lock), "old" the same ones with a customTime
// past FreshWindow, which locks and updates every toplevels row.
func BenchmarkPutTraceWide(b *testing.B) {
	for _, n := range []int{1000, 10_000} {
		for _, mode := range []string{"new", "fresh", "old"} {
			b.Run(fmt.Sprintf("tlids=%d/%s", n, mode), func(b *testing.B) {
				db := newDB(b)
				c := canvasID(1)
				i := 0
				next := func() traces.Record {
					i++
					first := 1
					if mode == "new" {
						first = i * n
					}
					tlids := make([]traces.TLID, n)
					for j := range tlids {
						tlids[j] = traces.TLID(first + j)
					}
					ts := base.Add(time.Duration(i) * time.Millisecond)
					ct := ts
					if mode == "old" {
						ct = ts.Add(-time.Hour)
					}
					return traces.Record{Canvas: c, ID: traces.NewTraceID(ts), RootTLID: traces.TLID(first), TLIDs: tlids,
						Timestamp: ts, Generation: int64(i), CustomTime: ct}
				}
				if _, err := db.PutTrace(b.Context(), next(), base); err != nil { // the toplevels exist from here on
					b.Fatal(err)
				}
				b.ReportAllocs()
				for b.Loop() {
					b.StopTimer()
					r := next()
					b.StartTimer()
					if _, err := db.PutTrace(b.Context(), r, r.Timestamp); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
