package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/jackc/pgx/v5"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/notify"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/ttl"
)

// GCResults are the GC figures: one uncapped pass over the traces the save
// benchmarks left, and saves measured without and then during GC passes
// at the default PATCH rate.
type GCResults struct {
	Renewed        int     `json:"renewed"`
	Seconds        float64 `json:"seconds"`
	RenewalsPerSec float64 `json:"renewals_per_sec"`
	Failed         int     `json:"failed"`
	SavesWithout   Result  `json:"saves_without_gc"`
	SavesDuring    Result  `json:"saves_during_gc"`
	DuringRenewed  int64   `json:"renewed_during_saves"`
	P99Ratio       float64 `json:"p99_ratio"`
	Err            string  `json:"error,omitempty"`
}

// gcRig runs ttl.GC passes in the bench process against the same bucket
// and index as the gateway (as a second replica would), on a clock that
// each pass moves six days further, so every keeper is due again.
type gcRig struct {
	gcs    *objstore.GCS
	db     *index.DB
	offset atomic.Int64
	close  func()
}

func newGCRig(ctx context.Context, emuURL, bucket, dbURL string) (*gcRig, error) {
	sc, err := storageClient(ctx, emuURL)
	if err != nil {
		return nil, err
	}
	// Each canvas a pass processes holds a connection for its claim while
	// it queries on others; the default pool (max(4, CPUs)) deadlocks with
	// the default four canvases at once on a small machine.
	db, err := index.Open(ctx, dbURL, index.Options{MaxConns: 16})
	if err != nil {
		sc.Close()
		return nil, err
	}
	return &gcRig{gcs: objstore.New(sc, bucket), db: db, close: func() { db.Close(); sc.Close() }}, nil
}

func (r *gcRig) now() time.Time { return time.Now().Add(time.Duration(r.offset.Load())) }

func (r *gcRig) gc(o ttl.Options) (*ttl.GC, error) {
	return ttl.New(r.gcs, r.db, ttl.DefaultPolicy(), r.now, nil, nil, o)
}

// pass moves the clock six days on and runs one pass.
func (r *gcRig) pass(ctx context.Context, g *ttl.GC) (ttl.Summary, time.Duration, error) {
	r.offset.Add(int64(6 * ttl.Day))
	t0 := time.Now()
	s, err := g.Pass(ctx, false)
	return s, time.Since(t0), err
}

// measureGC runs the uncapped pass, then saves (16 KiB, concurrency 16)
// without GC and with default-rate GC passes running back to back.
func measureGC(ctx context.Context, r *gcRig, saveOp func(ctx context.Context, i int) error, b bounds) GCResults {
	var res GCResults
	fast, err := r.gc(ttl.Options{PatchesPerSecond: -1})
	if err != nil {
		res.Err = err.Error()
		return res
	}
	s, d, err := r.pass(ctx, fast)
	res.Renewed, res.Failed, res.Seconds = s.Renewed, s.Failed, d.Seconds()
	if d > 0 {
		res.RenewalsPerSec = float64(s.Renewed) / d.Seconds()
	}
	if err != nil {
		res.Err = err.Error()
	}
	res.SavesWithout = runLoad(ctx, 16, b, saveOp)
	def, err := r.gc(ttl.Options{})
	if err != nil {
		res.Err = err.Error()
		return res
	}
	gctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	var renewed atomic.Int64
	go func() {
		defer close(done)
		for gctx.Err() == nil {
			s, _, _ := r.pass(gctx, def)
			renewed.Add(int64(s.Renewed))
		}
	}()
	res.SavesDuring = runLoad(ctx, 16, b, func(ctx context.Context, i int) error { return saveOp(ctx, i+1<<30) })
	stop()
	<-done
	res.DuringRenewed = renewed.Load()
	if res.SavesWithout.P99 > 0 {
		res.P99Ratio = float64(res.SavesDuring.P99) / float64(res.SavesWithout.P99)
	}
	return res
}

// NotifyResults are the deletion-notification figures.
type NotifyResults struct {
	Messages    int     `json:"messages"`
	Applied     int64   `json:"applied"`
	PublishSecs float64 `json:"publish_seconds"`
	ConsumeSecs float64 `json:"consume_seconds"`
	PerSec      float64 `json:"deletions_per_sec"`
	RowsRemoved int64   `json:"rows_removed"`
	ApplyN      int     `json:"apply_deletions"`
	ApplyPerSec float64 `json:"apply_deletions_per_sec"`
	// CeilingPerSec is how fast the same Pub/Sub delivers the same messages
	// to a bare Receive that only acks: the transport's own limit, which the
	// consumer cannot exceed.
	CeilingPerSec float64 `json:"transport_ceiling_per_sec"`
	CeilingN      int64   `json:"transport_ceiling_messages"`
	Err           string  `json:"error,omitempty"`
}

// measureNotify publishes OBJECT_DELETE notifications (GCS's format) for
// seeded traces to an in-process pstest, then runs notify.Consumer until it
// has applied them all: deletions per second from the first receive to the
// last ack, or the applied count when window ends first. It then applies more deletions straight through
// index.DB.RemoveManyWithLayers in batches of 1000 (the consumer's
// transaction, without Pub/Sub), to separate the two costs.
func measureNotify(ctx context.Context, dbURL, bucket string, viaPubSub, direct []index.Deletion, window time.Duration) NotifyResults {
	res := NotifyResults{Messages: len(viaPubSub), ApplyN: len(direct)}
	fail := func(err error) NotifyResults { res.Err = err.Error(); return res }
	db, err := index.Open(ctx, dbURL, index.Options{})
	if err != nil {
		return fail(err)
	}
	defer db.Close()
	srv := pstest.NewServer()
	defer srv.Close()
	ps, err := pubsub.NewClient(ctx, "bench", option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		return fail(err)
	}
	defer ps.Close()
	if err := notify.EnsureSubscription(ctx, ps, "bench", "gcs", "notify"); err != nil {
		return fail(err)
	}
	// A second subscription gets every message too, for the ceiling.
	if err := notify.EnsureSubscription(ctx, ps, "bench", "gcs", "ceiling"); err != nil {
		return fail(err)
	}
	before, err := countTraces(ctx, dbURL)
	if err != nil {
		return fail(err)
	}
	t0 := time.Now()
	pub := ps.Publisher("gcs")
	results := make([]*pubsub.PublishResult, 0, len(viaPubSub))
	for _, d := range viaPubSub {
		attrs, data := deleteNotification(bucket, d)
		results = append(results, pub.Publish(ctx, &pubsub.Message{Data: data, Attributes: attrs}))
	}
	for _, r := range results {
		if _, err := r.Get(ctx); err != nil {
			pub.Stop()
			return fail(fmt.Errorf("publish: %w", err))
		}
	}
	pub.Stop()
	res.PublishSecs = time.Since(t0).Seconds()

	c, err := notify.New(notify.Subscription(ps.Subscriber("notify"), 2*notify.DefaultMaxBatch), db, nil, bucket, notify.Options{})
	if err != nil {
		return fail(err)
	}
	cctx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	t1 := time.Now()
	go func() { runErr <- c.Run(cctx) }()
	// Poll the counter (the consumer has no completion signal): done when
	// all are applied, or when nothing was applied for stallAfter.
	const stallAfter = 3 * time.Second
	last, lastAt := int64(0), time.Now()
	for ctx.Err() == nil {
		n := c.Applied()
		if n != last {
			last, lastAt = n, time.Now()
		}
		if n >= int64(len(viaPubSub)) || time.Since(lastAt) > stallAfter || time.Since(t1) > window {
			break
		}
		time.Sleep(2 * time.Millisecond)
	}
	end := lastAt // all applied, or stalled: the last progress
	if last < int64(len(viaPubSub)) && time.Since(lastAt) <= stallAfter {
		end = time.Now() // the window ended while it was still applying
	}
	res.ConsumeSecs = end.Sub(t1).Seconds()
	res.Applied = last
	stop()
	if err := <-runErr; err != nil {
		res.Err = err.Error()
	}
	if last < int64(len(viaPubSub)) && time.Since(lastAt) > stallAfter {
		res.Err = fmt.Sprintf("the consumer applied %d of %d notifications, then nothing for %s", last, len(viaPubSub), stallAfter)
	}
	res.PerSec = float64(last) / res.ConsumeSecs
	after, err := countTraces(ctx, dbURL)
	if err != nil {
		return fail(err)
	}
	res.RowsRemoved = before - after
	res.CeilingN, res.CeilingPerSec = receiveCeiling(ctx, ps.Subscriber("ceiling"), int64(len(viaPubSub)), window)

	t2 := time.Now()
	for i := 0; i < len(direct); i += 1000 {
		if _, err := db.RemoveManyWithLayers(ctx, direct[i:min(i+1000, len(direct))]); err != nil {
			return fail(err)
		}
	}
	if d := time.Since(t2); d > 0 && len(direct) > 0 {
		res.ApplyPerSec = float64(len(direct)) / d.Seconds()
	}
	return res
}

// receiveCeiling receives up to n messages with a Receive that only acks,
// for at most window, and returns how many arrived and their rate from the
// first to the last.
func receiveCeiling(ctx context.Context, sub *pubsub.Subscriber, n int64, window time.Duration) (int64, float64) {
	sub.ReceiveSettings.MaxOutstandingMessages = 10_000
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	var got atomic.Int64
	var first, last atomic.Int64 // unix nanoseconds
	_ = sub.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		now := time.Now().UnixNano()
		first.CompareAndSwap(0, now)
		last.Store(now)
		if got.Add(1) >= n {
			cancel()
		}
	})
	d := time.Duration(last.Load() - first.Load())
	if d <= 0 {
		return got.Load(), 0
	}
	return got.Load(), float64(got.Load()) / d.Seconds()
}

func countTraces(ctx context.Context, url string) (int64, error) {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return 0, err
	}
	defer conn.Close(context.Background())
	var n int64
	err = conn.QueryRow(ctx, `SELECT count(*) FROM traces`).Scan(&n)
	return n, err
}

// deleteNotification is GCS's OBJECT_DELETE notification of a trace object.
func deleteNotification(bucket string, d index.Deletion) (map[string]string, []byte) {
	key := traces.TraceKey(d.Canvas, d.ID)
	g := strconv.FormatInt(d.Generation, 10)
	now := time.Now().UTC()
	attrs := map[string]string{
		"notificationConfig": "projects/_/buckets/" + bucket + "/notificationConfigs/1",
		"eventType":          "OBJECT_DELETE",
		"payloadFormat":      "JSON_API_V1",
		"bucketId":           bucket,
		"objectId":           key,
		"objectGeneration":   g,
		"eventTime":          now.Format(time.RFC3339Nano),
	}
	data, _ := json.Marshal(map[string]string{
		"kind": "storage#object", "id": bucket + "/" + key + "/" + g, "name": key, "bucket": bucket,
		"generation": g, "metageneration": "1", "contentType": "application/msgpack",
		"timeCreated": now.Add(-time.Hour).Format(time.RFC3339Nano), "updated": now.Format(time.RFC3339Nano),
		"storageClass": "STANDARD", "size": "0",
	})
	return attrs, data
}
