package bench

import (
	"context"
	"encoding/json"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/internal/index"
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
