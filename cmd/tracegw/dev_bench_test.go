package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// BenchmarkDevAdvanceDeletes50k is `tracegw dev` after a lifecycle run that
// deletes 50,000 trace objects: 50,000 traces of 50 toplevels (so 500 are
// keepers) saved at once, then one clock advance of 8 days. It times the
// advance, which returns only once the consumer has applied every deletion
// notification, so the time is until the index rows are gone. Run it with
// -benchtime=1x; the setup takes a minute or more.
func BenchmarkDevAdvanceDeletes50k(b *testing.B) { benchDevAdvance(b, 50_000, 50) }

// BenchmarkDevAdvanceDeletes10k is the same with 10,000 traces of 10
// toplevels, for a quicker look.
func BenchmarkDevAdvanceDeletes10k(b *testing.B) { benchDevAdvance(b, 10_000, 10) }

func benchDevAdvance(b *testing.B, traceCount, toplevels int) {
	for range b.N {
		b.StopTimer()
		url := testutil.PG(b)
		dt := startDevTest(b, url)
		ctx := b.Context()
		c, err := traces.ParseCanvasID("7d3f5a1c-0000-4000-8000-0000000000bb")
		if err != nil {
			b.Fatal(err)
		}
		seedDev(ctx, b, dt, c, traceCount, toplevels)
		b.StartTimer()
		start := time.Now()
		sum, err := dt.d.emu.Advance(ctx, 8*24*time.Hour)
		took := time.Since(start)
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		var rows int
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			b.Fatal(err)
		}
		err = conn.QueryRow(ctx, `SELECT count(*) FROM traces WHERE canvas_id = $1`, [16]byte(c)).Scan(&rows)
		conn.Close(ctx)
		if err != nil {
			b.Fatal(err)
		}
		want := traceCount - toplevels*10
		if sum.Deleted != want || rows != toplevels*10 {
			b.Fatalf("advance deleted %d objects, %d index rows left; want %d deleted, %d left", sum.Deleted, rows, want, toplevels*10)
		}
		b.ReportMetric(took.Seconds(), "advance_s")
		b.ReportMetric(float64(sum.Deleted)/took.Seconds(), "deletions/s")
		b.Logf("advance 8d: %d renewed, %d deleted, %d notifications consumed in %s; %d index rows left",
			sum.Renewed, sum.Deleted, sum.NotificationsConsumed, took.Round(time.Millisecond), rows)
	}
}

// seedDev saves n small traces of the given number of toplevels into
// canvas c of a running dev: objects first, then index rows, as a save does.
func seedDev(ctx context.Context, b *testing.B, dt *devTest, c traces.CanvasID, n, toplevels int) {
	b.Helper()
	now := dt.d.emu.Now().Truncate(time.Second)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32)
	for i := range n {
		g.Go(func() error {
			ts := now.Add(-time.Duration(n-i) * time.Millisecond)
			t := &traces.Trace{ID: traces.NewTraceID(ts), RootTLID: traces.TLID(i%toplevels + 1), Timestamp: ts}
			st, err := traces.Store(traces.AppendTraceMsgpack(nil, t))
			if err != nil {
				return err
			}
			info, err := dt.d.st.gcs.Create(gctx, traces.TraceKey(c, t.ID), st.Body, st.Object(now))
			if err != nil {
				return fmt.Errorf("create: %w", err)
			}
			_, err = dt.d.st.db.PutTrace(gctx, traces.Record{Canvas: c, ID: t.ID, RootTLID: t.RootTLID,
				TLIDs: []traces.TLID{t.RootTLID}, Timestamp: ts, Generation: info.Generation, CustomTime: now}, now)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		b.Fatalf("seed: %v", err)
	}
}
