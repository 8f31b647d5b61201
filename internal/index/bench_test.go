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

// The latest-10 data set: 100 canvases × 500 toplevels × 20 traces (a
// million traces, each with its traces, trace_tlids and toplevels rows);
// canvas 1 also has the hot toplevel and the 200 toplevels of RecentMany.
const (
	benchKey     = "index_bench_v2" // bump when seedBench changes
	benchHotTLID = 1_000_000        // canvas 1: 10,000 traces
	benchHot     = 10_000
	benchTLIDs   = 200 // canvas 1: tlids 1..200, 50 traces each
	benchPer     = 50
)

// benchRetention judges the benchmark traces a week after they ran.
var benchRetention = Retention{Period: 7 * 24 * time.Hour, Keep: 10, Now: base.Add(8 * 24 * time.Hour)}

// seeded opens a private copy of a seeded database.
func seeded(b *testing.B, key string, seed func(ctx context.Context, url string) error) *DB {
	b.Helper()
	start := time.Now()
	url := testutil.PGSeeded(b, key, seed)
	b.Logf("seeded database ready in %v", time.Since(start).Round(time.Millisecond))
	db, err := Open(b.Context(), url, Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(db.Close)
	return db
}

func benchDB(b *testing.B) (*DB, traces.CanvasID) {
	b.Helper()
	return seeded(b, benchKey, seedBench), canvasID(1)
}

// withConn runs f on a connection to url, closed afterwards, then freezes
// and analyses what f wrote.
func withConn(ctx context.Context, url string, f func(conn *pgx.Conn) error) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := f(conn); err != nil {
		return err
	}
	_, err = conn.Exec(ctx, "VACUUM (ANALYZE, FREEZE)")
	return err
}

func seedBench(ctx context.Context, url string) error {
	return withConn(ctx, url, func(conn *pgx.Conn) error {
		cs, err := seedGrid(ctx, conn, 100, 500, 20) // canvas IDs 1..100
		if err != nil {
			return err
		}
		// Canvas 1 again: the hot toplevel, then 200 toplevels of 50 traces.
		return seedTraces(ctx, conn, 1_000_000, benchHot+benchTLIDs*benchPer, func(i int) seedTrace {
			if i < benchHot {
				return seedTrace{canvas: cs[0], root: benchHotTLID, tlids: []int64{benchHotTLID}, ts: base.Add(time.Duration(i) * time.Second)}
			}
			k, j := (i-benchHot)/benchPer+1, (i-benchHot)%benchPer
			ts := base.Add(time.Duration(j)*time.Minute + time.Duration(k)*time.Millisecond)
			return seedTrace{canvas: cs[0], root: int64(benchHotTLID + k), tlids: []int64{int64(benchHotTLID + k)}, ts: ts}
		})
	})
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

// BenchmarkRecent is the plain latest-N list (index-only, no judgement),
// the baseline of BenchmarkRecentKept.
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

// BenchmarkRecentKept is the latest-N list the API serves, each trace
// judged (keptBecause, expiresAfter) in the same round trip, next to the
// plain list (plain: Recent; kept: RecentKept), alternating so that both
// see the same load. It logs both queries' EXPLAIN (ANALYZE, BUFFERS) once.
func BenchmarkRecentKept(b *testing.B) {
	db, c := benchDB(b)
	for _, q := range []struct {
		name, sql string
		args      []any
	}{
		{"recent", recentSQL, []any{[16]byte(c), int64(benchHotTLID), int64(10)}},
		{"recent kept", recentKeptSQL, append(append([]any{[16]byte(c)}, benchRetention.args()...), int64(benchHotTLID), int64(10))},
	} {
		plan, err := explainAnalyze(b.Context(), db.pool, q.sql, q.args...)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%s, latest 10 of the hot toplevel:\n%s", q.name, plan)
	}
	for _, limit := range []int{10, 100} {
		b.Run(fmt.Sprintf("limit=%d/plain", limit), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := db.Recent(b.Context(), c, benchHotTLID, limit)
				if err != nil || len(got) != limit {
					b.Fatalf("Recent = %d items, %v", len(got), err)
				}
			}
		})
		b.Run(fmt.Sprintf("limit=%d/kept", limit), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := db.RecentKept(b.Context(), c, benchHotTLID, limit, benchRetention)
				if err != nil || len(got) != limit || len(got[0].Kept.LatestFor) != 1 {
					b.Fatalf("RecentKept = %d items, %v", len(got), err)
				}
			}
		})
	}
}

func batchTLIDs() []traces.TLID {
	tlids := make([]traces.TLID, benchTLIDs)
	for k := range tlids {
		tlids[k] = traces.TLID(benchHotTLID + 1 + k)
	}
	return tlids
}

func BenchmarkRecentMany(b *testing.B) {
	db, c := benchDB(b)
	tlids := batchTLIDs()
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

// BenchmarkRecentManyKept is the batch the API serves, each trace judged,
// next to the plain batch, alternating (see BenchmarkRecentKept).
func BenchmarkRecentManyKept(b *testing.B) {
	db, c := benchDB(b)
	tlids := batchTLIDs()
	b.Run(fmt.Sprintf("toplevels=%d/plain", benchTLIDs), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := db.RecentMany(b.Context(), c, tlids, 10)
			if err != nil || len(got) != benchTLIDs || len(got[tlids[0]]) != 10 {
				b.Fatalf("RecentMany = %d toplevels, %v", len(got), err)
			}
		}
	})
	b.Run(fmt.Sprintf("toplevels=%d/kept", benchTLIDs), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := db.RecentManyKept(b.Context(), c, tlids, 10, benchRetention)
			if err != nil || len(got) != benchTLIDs || len(got[tlids[0]]) != 10 {
				b.Fatalf("RecentManyKept = %d toplevels, %v", len(got), err)
			}
		}
	})
}

// The search data set: one canvas with a million traces over about 29
// days (one every 2.5 s), each the root of one of 1,000 toplevels.
const (
	searchKey    = "index_search_v1" // bump when seedSearch changes
	searchTraces = 1_000_000
	searchTLIDs  = 1_000
	searchStep   = 2500 * time.Millisecond
)

func searchCanvas() traces.CanvasID { return canvasID(200) }

func seedSearch(ctx context.Context, url string) error {
	return withConn(ctx, url, func(conn *pgx.Conn) error {
		return seedTraces(ctx, conn, 0, searchTraces, func(i int) seedTrace {
			root := int64(1 + i%searchTLIDs)
			return seedTrace{canvas: searchCanvas(), root: root, tlids: []int64{root},
				ts: base.Add(time.Duration(i) * searchStep), held: i%10007 == 0}
		})
	})
}

// BenchmarkSearch pages a canvas of a million traces: the newest page, a
// page a week back (time range), a page deep in the middle (a cursor),
// one toplevel's traces, a trace-ID prefix, and the largest page.
func BenchmarkSearch(b *testing.B) {
	db := seeded(b, searchKey, seedSearch)
	c := searchCanvas()
	at := func(i int) traces.TraceID { return seedID(base.Add(time.Duration(i)*searchStep), i) }
	weekAgo := searchTraces - int(7*24*time.Hour/searchStep)
	tl := traces.TLID(500)
	var prefix, prefixHigh traces.TraceID // the first 7 hex digits of a trace in the middle
	mid := at(searchTraces / 2)
	copy(prefix[:], mid[:4])
	prefix[3] &= 0xf0
	prefixHigh = prefix
	prefixHigh[3] |= 0x0f
	for i := 4; i < 16; i++ {
		prefixHigh[i] = 0xff
	}
	for _, tc := range []struct {
		name string
		q    Range
	}{
		{"newest/limit=50", Range{High: maxTraceID, Limit: 51}},
		{"newest/limit=1000", Range{High: maxTraceID, Limit: 1001}},
		{"since=7d-ago,until=+1h/limit=50", Range{Low: at(weekAgo), High: at(weekAgo + int(time.Hour/searchStep)), Limit: 51}},
		{"cursor=middle/limit=50", Range{High: at(searchTraces / 2), Limit: 51}},
		{"tlid/limit=50", Range{High: maxTraceID, Limit: 51, TLID: &tl}},
		{"tlid,cursor=middle/limit=50", Range{High: at(searchTraces / 2), Limit: 51, TLID: &tl}},
		{"prefix=7hex/limit=50", Range{Low: prefix, High: prefixHigh, Limit: 51}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				got, err := db.Search(b.Context(), c, tc.q, benchRetention)
				if err != nil || len(got) == 0 {
					b.Fatalf("Search = %d items, %v", len(got), err)
				}
			}
		})
	}
}
