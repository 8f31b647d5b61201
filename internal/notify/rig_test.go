package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

const (
	testProject = "tracegw-test"
	testBucket  = "traces-test"
)

// rig is a subscription with a publisher, an index and consumers started
// on it one after the other.
type rig struct {
	t      *testing.T
	client *pubsub.Client
	pub    *pubsub.Publisher
	sub    string
	db     *index.DB
	c      *Consumer
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

// newRig creates a fresh topic and subscription through client and opens
// the index at dbURL.
func newRig(t *testing.T, client *pubsub.Client, dbURL string) *rig {
	t.Helper()
	suffix := randomHex(t)
	topic, sub := "gcs-"+suffix, "notify-"+suffix
	if err := EnsureSubscription(t.Context(), client, testProject, topic, sub); err != nil {
		t.Fatalf("EnsureSubscription: %v", err)
	}
	db, err := index.Open(t.Context(), dbURL, index.Options{MaxConns: 4, ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("index.Open: %v", err)
	}
	t.Cleanup(db.Close)
	pub := client.Publisher(topic)
	t.Cleanup(pub.Stop)
	return &rig{t: t, client: client, pub: pub, sub: sub, db: db}
}

// start runs a new consumer (with a fresh registry) until stop or the end
// of the test.
func (r *rig) start(layers layerDeleter, o Options) *Consumer {
	r.t.Helper()
	r.reg = prometheus.NewRegistry()
	o.Registerer = r.reg
	c, err := New(Subscription(r.client.Subscriber(r.sub), 2*max(o.MaxBatch, DefaultMaxBatch)), r.db, layers, testBucket, o)
	if err != nil {
		r.t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.c, r.cancel, r.done = c, cancel, make(chan error, 1)
	go func() { r.done <- c.Run(ctx) }()
	r.t.Cleanup(func() { r.stop() })
	return c
}

// stop cancels the running consumer and checks that Run returned nil.
func (r *rig) stop() {
	r.t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			r.t.Errorf("Run = %v, want nil on a clean stop", err)
		}
	case <-time.After(30 * time.Second):
		r.t.Errorf("Run did not return within 30s of cancellation")
	}
}

// publish publishes a notification and returns its message ID.
func (r *rig) publish(attrs map[string]string, data []byte) string {
	r.t.Helper()
	id, err := r.pub.Publish(r.t.Context(), &pubsub.Message{Attributes: attrs, Data: data}).Get(r.t.Context())
	if err != nil {
		r.t.Fatalf("publish: %v", err)
	}
	return id
}

// publishDelete publishes GCS's OBJECT_DELETE of a trace at generation gen.
func (r *rig) publishDelete(rec traces.Record, gen int64, extra map[string]string) string {
	r.t.Helper()
	return r.publish(gcsNotification(testBucket, EventDelete, traces.TraceKey(rec.Canvas, rec.ID), gen, extra))
}

// waitApplied waits until the running consumer has acked n messages.
func (r *rig) waitApplied(n int64) {
	r.t.Helper()
	testutil.WaitFor(r.t, 30*time.Second, fmt.Sprintf("%d notifications applied", n), func() bool { return r.c.Applied() >= n })
}

// putTrace indexes a trace of canvas c at generation gen with layers layers.
func (r *rig) putTrace(c traces.CanvasID, i int, gen int64, layers int) traces.Record {
	r.t.Helper()
	return putTrace(r.t, r.db, c, i, gen, layers)
}

func putTrace(t testing.TB, db *index.DB, c traces.CanvasID, i int, gen int64, layers int) traces.Record {
	t.Helper()
	ts := eventTime.Add(-time.Hour + time.Duration(i)*time.Millisecond)
	rec := traces.Record{Canvas: c, ID: traces.NewTraceID(ts), RootTLID: traces.TLID(i%5 + 1),
		TLIDs: []traces.TLID{traces.TLID(i%5 + 1), 99}, Timestamp: ts, Generation: gen, CustomTime: ts, Layers: layers}
	if _, err := db.PutTrace(t.Context(), rec, rec.CustomTime); err != nil {
		t.Fatalf("PutTrace: %v", err)
	}
	return rec
}

// indexed reports whether the trace still has index rows.
func (r *rig) indexed(rec traces.Record) bool {
	r.t.Helper()
	_, err := r.db.Get(r.t.Context(), rec.Canvas, rec.ID)
	if err != nil && !errors.Is(err, traces.ErrNotFound) {
		r.t.Fatalf("Get: %v", err)
	}
	return err == nil
}

func (r *rig) counter(name string, labels ...string) float64 {
	r.t.Helper()
	switch name {
	case "received":
		return value(r.t, r.c.m.received)
	case "applied":
		return value(r.t, r.c.m.applied)
	case "malformed":
		return value(r.t, r.c.m.malformed)
	case "nacked":
		return value(r.t, r.c.m.nacked)
	case "ignored":
		return value(r.t, r.c.m.ignored.WithLabelValues(labels...))
	case "removed":
		return value(r.t, r.c.m.tracesRemoved)
	}
	r.t.Fatalf("no counter %s", name)
	return 0
}

func randomHex(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// value reads a counter or a histogram's sample count.
func value(t testing.TB, c prometheus.Metric) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatalf("read metric: %v", err)
	}
	if h := m.GetHistogram(); h != nil {
		return float64(h.GetSampleCount())
	}
	return m.GetCounter().GetValue()
}
