package notify

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// pstestRig is a rig on an in-process pstest server.
func pstestRig(t *testing.T) (*rig, *pstest.Server) {
	t.Helper()
	srv, opts := testutil.PubSubServer(t)
	client, err := pubsub.NewClient(t.Context(), testProject, opts...)
	if err != nil {
		t.Fatalf("pubsub.NewClient: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return newRig(t, client, testutil.PG(t)), srv
}

func TestBatchesFillToMaxBatch(t *testing.T) {
	t.Parallel()
	r, _ := pstestRig(t)
	c := testCanvas(3)
	var recs []traces.Record
	for i := range 30 {
		recs = append(recs, r.putTrace(c, i, 7, 0))
	}
	// MaxWait is far away, so only a full batch is applied: exactly three.
	r.start(nil, Options{MaxBatch: 10, MaxWait: time.Hour})
	for _, rec := range recs {
		r.publishDelete(rec, 7, nil)
	}
	r.waitApplied(30)
	if got := value(t, r.c.m.batchSize); got != 3 {
		t.Errorf("batches = %v, want 3", got)
	}
	for _, rec := range recs {
		if r.indexed(rec) {
			t.Fatalf("trace %s still indexed", rec.ID)
		}
	}
	if got := r.counter("removed"); got != 30 {
		t.Errorf("traces removed = %v, want 30", got)
	}
}

func TestMaxWaitFlushesPartialBatch(t *testing.T) {
	t.Parallel()
	r, _ := pstestRig(t)
	rec := r.putTrace(testCanvas(4), 1, 7, 0)
	r.start(nil, Options{MaxBatch: 1000, MaxWait: 10 * time.Millisecond})
	r.publishDelete(rec, 7, nil)
	r.waitApplied(1)
	if r.indexed(rec) {
		t.Errorf("trace still indexed")
	}
	if got := value(t, r.c.m.lag); got != 1 {
		t.Errorf("lag samples = %v, want 1", got)
	}
}

// A clean stop commits and acks the batch in hand before Run returns.
func TestStopFlushesBatchInHand(t *testing.T) {
	t.Parallel()
	r, srv := pstestRig(t)
	c := testCanvas(5)
	a, b := r.putTrace(c, 1, 7, 0), r.putTrace(c, 2, 7, 0)
	r.start(nil, Options{MaxBatch: 1000, MaxWait: time.Hour})
	ids := []string{r.publishDelete(a, 7, nil), r.publishDelete(b, 7, nil)}
	testutil.WaitFor(t, 10*time.Second, "2 notifications received", func() bool { return r.c.Received() == 2 })
	if got := r.c.Applied(); got != 0 {
		t.Fatalf("applied %d before MaxWait or MaxBatch", got)
	}
	r.stop()
	if got := r.c.Applied(); got != 2 {
		t.Errorf("applied after stop = %d, want 2", got)
	}
	if r.indexed(a) || r.indexed(b) {
		t.Errorf("traces still indexed after stop")
	}
	for _, id := range ids {
		if m := srv.Message(id); m == nil || m.Acks == 0 {
			t.Errorf("message %s not acked by the time Run returned", id)
		}
	}
}

func TestMalformedAndForeignAreAcked(t *testing.T) {
	t.Parallel()
	r, srv := pstestRig(t)
	c := testCanvas(6)
	rec := r.putTrace(c, 1, 7, 0)
	r.start(nil, Options{})
	ids := []string{
		r.publish(map[string]string{"hello": "world"}, []byte("not a notification")),
		r.publish(gcsNotification("another-bucket", EventDelete, traces.TraceKey(rec.Canvas, rec.ID), 7, nil)),
		r.publish(gcsNotification(testBucket, EventDelete, "backups/2026.tar", 7, nil)),
		r.publish(gcsNotification(testBucket, EventFinalize, traces.TraceKey(rec.Canvas, rec.ID), 8, nil)),
		r.publish(gcsNotification(testBucket, EventDelete, traces.LayerKey(rec.Canvas, rec.ID, 1), 7, nil)),
		r.publish(gcsNotification(testBucket, EventDelete, traces.UnmatchedKey(rec.Canvas, rec.ID), 7, nil)),
	}
	r.waitApplied(int64(len(ids)))
	// The client sends acks in the background: wait for pstest to see them.
	testutil.WaitFor(t, 10*time.Second, "every message acked", func() bool {
		return !slices.ContainsFunc(ids, func(id string) bool { return srv.Message(id).Acks == 0 })
	})
	if !r.indexed(rec) {
		t.Errorf("trace removed by a foreign or non-delete notification")
	}
	for reason, want := range map[Reason]float64{ReasonForeignBucket: 1, ReasonForeignKey: 1, ReasonEventType: 1, ReasonLayer: 1, ReasonUnmatched: 1, ReasonOverwrite: 0} {
		if got := r.counter("ignored", string(reason)); got != want {
			t.Errorf("ignored{%s} = %v, want %v", reason, got, want)
		}
	}
	if got := r.counter("malformed"); got != 1 {
		t.Errorf("malformed = %v, want 1", got)
	}
}

func TestUnmatchedHook(t *testing.T) {
	t.Parallel()
	r, _ := pstestRig(t)
	c := testCanvas(7)
	id := traces.NewTraceID(eventTime)
	var (
		mu  sync.Mutex
		got []index.Deletion
	)
	r.start(nil, Options{Unmatched: func(_ context.Context, ds []index.Deletion) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, ds...)
		return nil
	}})
	r.publish(gcsNotification(testBucket, EventDelete, traces.UnmatchedKey(c, id), 9, nil))
	r.waitApplied(1)
	mu.Lock()
	defer mu.Unlock()
	if want := []index.Deletion{{Canvas: c, ID: id, Generation: 9}}; !slices.Equal(got, want) {
		t.Errorf("Unmatched got %v, want %v", got, want)
	}
}

// recordingDeleter records the layer keys the consumer deletes; the third
// one fails, as GCS might.
type recordingDeleter struct {
	mu   sync.Mutex
	keys []string
}

func (d *recordingDeleter) Delete(_ context.Context, key string, ifGeneration int64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.keys = append(d.keys, key)
	switch len(d.keys) {
	case 2:
		return traces.ErrNotFound // already gone: fine
	case 3:
		return traces.ErrUnavailable
	}
	return nil
}

func (d *recordingDeleter) deleted() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Sorted(slices.Values(d.keys))
}

func TestLayersDeletedAfterCommit(t *testing.T) {
	t.Parallel()
	r, _ := pstestRig(t)
	c := testCanvas(8)
	withLayers, without := r.putTrace(c, 1, 7, 3), r.putTrace(c, 2, 7, 0)
	d := &recordingDeleter{}
	r.start(d, Options{})
	r.publishDelete(withLayers, 7, nil)
	r.publishDelete(without, 7, nil)
	r.waitApplied(2)
	testutil.WaitFor(t, 10*time.Second, "3 layer objects deleted", func() bool { return len(d.deleted()) == 3 })
	r.stop() // waits for the layer worker
	want := []string{
		traces.LayerKey(c, withLayers.ID, 1), traces.LayerKey(c, withLayers.ID, 2), traces.LayerKey(c, withLayers.ID, 3),
	}
	if got := d.deleted(); !slices.Equal(got, want) {
		t.Errorf("deleted %v, want %v", got, want)
	}
	if got := value(t, r.c.m.layersDeleted); got != 2 {
		t.Errorf("layers deleted = %v, want 2 (one was already gone)", got)
	}
	if got := value(t, r.c.m.layerErrors); got != 1 {
		t.Errorf("layer errors = %v, want 1", got)
	}
}

func TestNewRequiresBucket(t *testing.T) {
	t.Parallel()
	if _, err := New(nil, nil, nil, "", Options{}); !errors.Is(err, traces.ErrInvalid) {
		t.Errorf("New without a bucket = %v, want ErrInvalid", err)
	}
}

func TestEnsureSubscriptionIsIdempotent(t *testing.T) {
	t.Parallel()
	_, opts := testutil.PubSubServer(t)
	client, err := pubsub.NewClient(t.Context(), testProject, opts...)
	if err != nil {
		t.Fatalf("pubsub.NewClient: %v", err)
	}
	defer client.Close()
	for range 2 {
		if err := EnsureSubscription(t.Context(), client, testProject, "t1", "s1"); err != nil {
			t.Fatalf("EnsureSubscription: %v", err)
		}
	}
	if err := EnsureSubscription(t.Context(), client, testProject, "t2", "s1"); !errors.Is(err, traces.ErrConflict) {
		t.Errorf("EnsureSubscription on another topic = %v, want ErrConflict", err)
	}
}

func TestRunFailsOnMissingSubscription(t *testing.T) {
	t.Parallel()
	_, opts := testutil.PubSubServer(t)
	client, err := pubsub.NewClient(t.Context(), testProject, opts...)
	if err != nil {
		t.Fatalf("pubsub.NewClient: %v", err)
	}
	defer client.Close()
	c, err := New(Subscription(client.Subscriber("missing"), 2000), nil, nil, testBucket, Options{})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := c.Run(ctx); err == nil || ctx.Err() != nil {
		t.Errorf("Run on a missing subscription = %v (ctx %v), want an error before the deadline", err, ctx.Err())
	}
}
