package notify

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/testutil"
)

const benchTraces = 100_000

// seedBench indexes benchTraces traces over 100 canvases (two toplevels
// each, so every removal also deletes two trace_tlids rows) and keeps a copy
// of both tables to refill them from.
func seedBench(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, fmt.Sprintf(`
INSERT INTO traces (canvas_id, trace_id, root_tlid, tlids, ts, generation, custom_time, layers)
SELECT md5('canvas' || (i %% 100))::uuid, gen_random_uuid(), i %% 50, ARRAY[i %% 50, 1000 + i %% 7],
       '2026-03-01'::timestamptz, 1000 + i, '2026-03-01'::timestamptz, 0
FROM generate_series(1, %d) AS i;
INSERT INTO trace_tlids (canvas_id, tlid, trace_id, ts, root_tlid)
SELECT canvas_id, u, trace_id, ts, root_tlid FROM traces, unnest(tlids) AS u;
CREATE TABLE bench_traces AS TABLE traces;
CREATE TABLE bench_trace_tlids AS TABLE trace_tlids;
ANALYZE;`, benchTraces))
	return err
}

// BenchmarkApply measures deletions applied per second on real PostgreSQL
// with pre-seeded rows: MaxBatch deletions per transaction versus one
// message per transaction (one stream, as a consumer with MaxBatch 1 would
// run). Each op applies 1000 deletions that each remove a trace.
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{1000, 1} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			url := testutil.PGSeeded(b, "notify_apply_100k", seedBench)
			ctx := b.Context()
			db, err := index.Open(ctx, url, index.Options{MaxConns: 4})
			if err != nil {
				b.Fatalf("index.Open: %v", err)
			}
			defer db.Close()
			conn, err := pgx.Connect(ctx, url)
			if err != nil {
				b.Fatalf("connect: %v", err)
			}
			defer conn.Close(context.Background())
			all := loadDeletions(b, conn)
			c, err := New(nil, db, nil, testBucket, Options{})
			if err != nil {
				b.Fatalf("New: %v", err)
			}
			noop := func() {}
			batch := make([]delivery, 0, size)
			deleted, pos := 0, 0
			b.ReportAllocs()
			for b.Loop() {
				if pos+1000 > len(all) {
					b.StopTimer()
					refill(b, conn)
					pos = 0
					b.StartTimer()
				}
				for _, d := range all[pos : pos+1000] {
					batch = append(batch, delivery{act: Action{Kind: Remove, Deletion: d}, ack: noop, nack: noop})
					if len(batch) == size {
						if _, err := c.applyBatch(ctx, batch); err != nil {
							b.Fatalf("applyBatch: %v", err)
						}
						batch = batch[:0]
					}
				}
				pos += 1000
				deleted += 1000
			}
			if got := int(value(b, c.m.tracesRemoved)); got != deleted {
				b.Fatalf("removed %d traces, want %d: the benchmark deleted nothing real", got, deleted)
			}
			b.ReportMetric(float64(deleted)/b.Elapsed().Seconds(), "deletions/s")
		})
	}
}

func loadDeletions(b *testing.B, conn *pgx.Conn) []index.Deletion {
	b.Helper()
	rows, err := conn.Query(b.Context(), `SELECT canvas_id, trace_id, generation FROM bench_traces ORDER BY generation`)
	if err != nil {
		b.Fatalf("load: %v", err)
	}
	var (
		out        []index.Deletion
		canvas, id [16]byte
		gen        int64
	)
	_, err = pgx.ForEachRow(rows, []any{&canvas, &id, &gen}, func() error {
		out = append(out, index.Deletion{Canvas: canvas, ID: id, Generation: gen})
		return nil
	})
	if err != nil {
		b.Fatalf("load: %v", err)
	}
	return out
}

func refill(b *testing.B, conn *pgx.Conn) {
	b.Helper()
	_, err := conn.Exec(b.Context(), `
TRUNCATE traces, trace_tlids;
INSERT INTO traces SELECT * FROM bench_traces;
INSERT INTO trace_tlids SELECT * FROM bench_trace_tlids;
ANALYZE traces, trace_tlids;`)
	if err != nil {
		b.Fatalf("refill: %v", err)
	}
}
