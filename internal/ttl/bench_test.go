package ttl

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// The benchmark's index: 100 canvases x 1,000 toplevels = 100,000
// toplevels. Every 10th toplevel is due and has 12 traces: the 2 oldest are
// not keepers, the next 7 keepers are stale, the newest 3 fresh. The other
// 90,000 have 10 fresh traces and a fresh renew_after. That is 1,020,000
// trace_tlids rows (and as many traces), and exactly 10,000 x 7 = 70,000
// keepers needing renewal.
const (
	benchCanvases  = 100
	benchToplevels = 1000 // per canvas
	benchDueEvery  = 10
	benchStale     = 7 // stale keepers per due toplevel
	benchWantPatch = benchCanvases * benchToplevels / benchDueEvery * benchStale
)

// benchNow is the GC's clock in the benchmark.
var benchNow = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

func seedGCBench(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	stale, fresh := benchNow.Add(-6*Day), benchNow.Add(-time.Hour)
	type trow struct {
		c    traces.CanvasID
		tlid int64
		id   traces.TraceID
		ts   time.Time
		ct   time.Time
	}
	rows := make(chan trow, 4096)
	go func() {
		defer close(rows)
		t0 := benchNow.Add(-10 * Day)
		for ci := range benchCanvases {
			c := canvas(byte(ci + 1))
			c[1] = byte(ci >> 8)
			for tl := range benchToplevels {
				n, due := 10, tl%benchDueEvery == 0
				if due {
					n = 12
				}
				for i := range n {
					ts := t0.Add(time.Duration(tl*20+i) * time.Millisecond)
					ct := fresh
					if due && i < n-3 {
						ct = stale
					}
					rows <- trow{c, int64(tl + 1), traces.NewTraceID(ts), ts, ct}
				}
			}
		}
	}()
	// One COPY into a temporary table, then both tables from it.
	if _, err := conn.Exec(ctx, `CREATE TEMP TABLE seed (canvas_id uuid, tlid bigint, trace_id uuid, ts timestamptz, custom_time timestamptz)`); err != nil {
		return err
	}
	_, err = conn.CopyFrom(ctx, pgx.Identifier{"seed"}, []string{"canvas_id", "tlid", "trace_id", "ts", "custom_time"},
		pgx.CopyFromFunc(func() ([]any, error) {
			r, ok := <-rows
			if !ok {
				return nil, nil
			}
			return []any{[16]byte(r.c), r.tlid, [16]byte(r.id), r.ts, r.ct}, nil
		}))
	for range rows { // drain if COPY stopped early
	}
	if err != nil {
		return err
	}
	for _, q := range []string{
		`INSERT INTO traces (canvas_id, trace_id, root_tlid, tlids, ts, generation, custom_time, layers)
		 SELECT canvas_id, trace_id, tlid, ARRAY[tlid], ts, 1, custom_time, 0 FROM seed`,
		`INSERT INTO trace_tlids (canvas_id, tlid, trace_id, ts, root_tlid)
		 SELECT canvas_id, tlid, trace_id, ts, tlid FROM seed`,
		`INSERT INTO toplevels (canvas_id, tlid, renew_after)
		 SELECT canvas_id, tlid, min(custom_time) FROM seed GROUP BY canvas_id, tlid`,
		`VACUUM (ANALYZE, FREEZE) traces, trace_tlids, toplevels`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// countRenewer accepts every PATCH and counts them: no GCS for a million
// rows. Stat is never needed since nothing fails.
type countRenewer struct{ n atomic.Int64 }

func (r *countRenewer) SetCustomTime(_ context.Context, key string, t time.Time, _ int64) (traces.ObjectInfo, error) {
	r.n.Add(1)
	return traces.ObjectInfo{Key: key, CustomTime: t}, nil
}

func (r *countRenewer) Stat(_ context.Context, key string) (traces.ObjectInfo, error) {
	return traces.ObjectInfo{Key: key}, nil
}

// BenchmarkGCPass runs one GC pass over the seeded million-row index per
// iteration (each on a fresh copy) and reports the pass time and the exact
// number of customTime PATCHes, which must equal the keepers needing
// renewal. Run: go test ./internal/ttl/ -run '^$' -bench GCPass -benchtime 3x
func BenchmarkGCPass(b *testing.B) {
	var patches int64
	var pass time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		url := testutil.PGSeeded(b, "gc1m_v1", seedGCBench)
		db, err := index.Open(b.Context(), url, index.Options{MaxConns: 16})
		if err != nil {
			b.Fatal(err)
		}
		r := &countRenewer{}
		g, err := New(r, db, DefaultPolicy(), func() time.Time { return benchNow }, nil, nil,
			Options{PatchesPerSecond: -1, Canvases: 8})
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		b.StartTimer()
		s, err := g.Pass(b.Context(), false)
		b.StopTimer()
		pass += time.Since(start)
		if err != nil {
			b.Fatalf("pass: %v", err)
		}
		if got := r.n.Load(); got != benchWantPatch || s.Renewed != benchWantPatch {
			b.Fatalf("PATCHes = %d, renewed %d; want exactly %d (the keepers needing renewal); %+v", got, s.Renewed, benchWantPatch, s)
		}
		patches += r.n.Load()
		// A second pass finds nothing due.
		if s2, err := g.Pass(b.Context(), false); err != nil || s2.Patches != 0 || s2.Examined != 0 {
			b.Fatalf("second pass: %+v, %v; want nothing", s2, err)
		}
		db.Close()
	}
	b.ReportMetric(float64(patches)/float64(b.N), "patches/op")
	b.ReportMetric(float64(benchWantPatch), "due_keepers")
	b.ReportMetric(pass.Seconds()/float64(b.N), "pass_s/op")
}
