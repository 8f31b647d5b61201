package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// Defaults for Options.
const (
	DefaultMaxBatch        = 1000
	DefaultMaxWait         = 50 * time.Millisecond
	DefaultApplyTimeout    = 30 * time.Second
	DefaultShutdownTimeout = 10 * time.Second
	// DefaultMaxOutstanding is the Pub/Sub flow control serve passes to
	// Subscription: messages in hand at once, leased and extended by the
	// client until acked. Four batches: one committing, one filling, and
	// room for the stream to keep delivering meanwhile.
	DefaultMaxOutstanding = 4 * DefaultMaxBatch
	defaultLayerWorkers   = 8
)

// After a failed commit the batcher waits before the next one, doubling from
// retryMin to retryMax, so a database outage does not turn into a tight
// nack/redeliver loop.
const (
	retryMin = 50 * time.Millisecond
	retryMax = 2 * time.Second
)

// Options configures a Consumer; every field has a default.
type Options struct {
	// MaxBatch caps the deletions applied in one transaction (default 1000).
	MaxBatch int
	// MaxWait is how long a batch collects after its first message before it
	// is applied anyway (default 50 ms).
	MaxWait time.Duration
	// ApplyTimeout bounds one batch's transaction (default 30 s; keep it well
	// under the subscription's ack deadline).
	ApplyTimeout time.Duration
	// ShutdownTimeout bounds the last batch's commit and the remaining layer
	// deletions once Run's context is cancelled (default 10 s).
	ShutdownTimeout time.Duration
	// Logger receives the consumer's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the consumer's metrics (tracegw_notify_*); nil
	// registers nothing.
	Registerer prometheus.Registerer
	// Now is the clock for the lag metric and the progress record; nil
	// means time.Now.
	Now func() time.Time
	// Unmatched, if set, receives the deletions of unmatched requests
	// ("404s") of each batch after the trace rows committed and before the
	// batch is acked; an error nacks the batch. Unset, such notifications are
	// acked and counted as ignored (reason unmatched): they have no index
	// rows yet.
	Unmatched func(ctx context.Context, ds []index.Deletion) error
}

// layerDeleter is all the consumer needs from Cloud Storage: deleting the
// layer objects of traces whose rows it removed. *objstore.GCS has it.
type layerDeleter interface {
	// Delete removes the object (ifGeneration 0: any generation). A missing
	// object wraps traces.ErrNotFound.
	Delete(ctx context.Context, key string, ifGeneration int64) error
}

// Consumer applies GCS deletion notifications from one Pub/Sub subscription
// to the index. Its counters are safe for concurrent use; Run is called once.
type Consumer struct {
	src    Source
	db     *index.DB
	layers layerDeleter
	o      Options
	log    *slog.Logger
	m      *notifyMetrics
	bucket string

	received atomic.Int64
	applied  atomic.Int64
	progress progress
}

// New returns a consumer of src (Subscription, or a Queue) for the trace
// bucket (notifications about other buckets are ignored, reason
// foreign_bucket) that removes index rows from db and deletes the layer
// objects of removed traces through layers (nil: leave layers to the
// lifecycle rule). It fails if bucket is empty. The caller owns and closes
// the Pub/Sub client and db.
func New(src Source, db *index.DB, layers layerDeleter, bucket string, o Options) (*Consumer, error) {
	if bucket == "" {
		return nil, fmt.Errorf("new notify consumer: %w", traces.Invalid("bucket", "is required"))
	}
	if o.MaxBatch <= 0 {
		o.MaxBatch = DefaultMaxBatch
	}
	if o.MaxWait <= 0 {
		o.MaxWait = DefaultMaxWait
	}
	if o.ApplyTimeout <= 0 {
		o.ApplyTimeout = DefaultApplyTimeout
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := newMetrics(o.Registerer)
	return &Consumer{src: src, db: db, layers: layers, o: o, log: log.With("component", "notify"), m: m, bucket: bucket}, nil
}

// Received returns how many messages the consumer has received, each
// redelivery counted again.
func (c *Consumer) Received() int64 { return c.received.Load() }

// Applied returns how many messages were handled for good and acked:
// deletions whose batch committed, plus ignored and malformed messages
// (acked without a change). A nacked message is not counted until its
// redelivery is acked. `tracegw dev` waits for Applied to reach the number
// of notifications published.
func (c *Consumer) Applied() int64 { return c.applied.Load() }

// delivery is one message on its way through a batch.
type delivery struct {
	id        string
	act       Action
	ack, nack func()
}

// Run receives and applies notifications until ctx is cancelled or the
// subscription fails for good. On cancellation it stops receiving, commits
// and acks the batch in hand (within ShutdownTimeout; nacks it if that
// fails), finishes or abandons the pending layer deletions within
// ShutdownTimeout, and returns nil. A fatal error of the source (for
// example a missing subscription) is returned.
func (c *Consumer) Run(ctx context.Context) error {
	in := make(chan delivery)
	layerq := make(chan []index.Removed, 64)
	batcherDone := make(chan struct{})
	go func() {
		defer close(batcherDone)
		c.batcher(ctx, in, layerq)
	}()
	layerCtx, cancelLayers := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelLayers()
	layersDone := make(chan struct{})
	go func() {
		defer close(layersDone)
		c.layerWorker(layerCtx, layerq)
	}()

	err := c.src.Receive(ctx, func(mctx context.Context, msg Message) {
		c.handle(mctx, msg, in)
	})
	// Receive returns once every handler has returned and every message was
	// acked or nacked, so nothing sends on in any more.
	close(in)
	<-batcherDone
	close(layerq)
	stop := time.AfterFunc(c.o.ShutdownTimeout, cancelLayers)
	<-layersDone
	stop.Stop()
	return err
}

// handle decides one message. Ignored and malformed ones are acked at once;
// deletions go to the batcher, which acks them after commit.
func (c *Consumer) handle(ctx context.Context, msg Message, in chan<- delivery) {
	c.received.Add(1)
	c.m.received.Inc()
	act := Decide(msg.Attributes, msg.Data, c.bucket)
	if c.immediate(ctx, act, msg.ID) {
		msg.Ack()
		return
	}
	d := delivery{id: msg.ID, act: act, ack: msg.Ack, nack: msg.Nack}
	select {
	case in <- d:
	case <-ctx.Done(): // shutting down: it comes back later
		c.m.nacked.Inc()
		msg.Nack()
	}
}

// immediate counts and logs a message that needs no transaction, and
// reports whether it can be acked at once.
func (c *Consumer) immediate(ctx context.Context, act Action, id string) bool {
	switch {
	case act.Kind == Malformed:
		c.log.Warn("malformed notification acked", "message_id", id, "err", act.Detail)
		c.m.malformed.Inc()
	case act.Kind == Ignore && !(act.Reason == ReasonUnmatched && c.o.Unmatched != nil):
		level := slog.LevelDebug // overwrites, layers, other events: routine
		if act.Reason == ReasonForeignBucket || act.Reason == ReasonForeignKey {
			level = slog.LevelInfo // a shared topic or a misconfigured notification
		}
		c.log.Log(ctx, level, "notification ignored", "message_id", id, "reason", string(act.Reason))
		c.m.ignored.WithLabelValues(string(act.Reason)).Inc()
	default:
		return false
	}
	c.applied.Add(1)
	c.m.applied.Inc()
	return true
}

// batcher collects deliveries into batches of up to MaxBatch, or whatever
// arrived within MaxWait of a batch's first message, and applies each in one
// transaction. Once ctx is done it flushes what it holds at once and keeps
// applying (with a fresh ShutdownTimeout context per batch) until in closes.
func (c *Consumer) batcher(ctx context.Context, in <-chan delivery, layerq chan<- []index.Removed) {
	var (
		batch   []delivery
		timer   = time.NewTimer(time.Hour)
		timerC  <-chan time.Time
		done    = ctx.Done()
		backoff time.Duration
	)
	timer.Stop()
	defer timer.Stop()
	flush := func() {
		timer.Stop()
		timerC = nil
		if len(batch) == 0 {
			return
		}
		removed, err := c.applyBatch(ctx, batch)
		batch = batch[:0]
		if err != nil {
			backoff = min(max(2*backoff, retryMin), retryMax)
			wait(ctx, backoff)
			return
		}
		backoff = 0
		if len(removed) > 0 && c.layers != nil {
			layerq <- removed
		}
	}
	for {
		select {
		case d, ok := <-in:
			if !ok {
				flush()
				return
			}
			batch = append(batch, d)
			if len(batch) >= c.o.MaxBatch {
				flush()
			} else if len(batch) == 1 {
				timer.Reset(c.o.MaxWait)
				timerC = timer.C
			}
		case <-timerC:
			flush()
		case <-done:
			done = nil
			flush()
		}
	}
}

// applyBatch commits one batch, then acks it; on failure it nacks it. It
// returns the traces whose rows were removed.
func (c *Consumer) applyBatch(ctx context.Context, batch []delivery) ([]index.Removed, error) {
	var (
		ds, unmatched []index.Deletion
		start         = time.Now()
	)
	for _, d := range batch {
		if d.act.Kind == Remove {
			ds = append(ds, d.act.Deletion)
		} else {
			unmatched = append(unmatched, d.act.Deletion)
		}
	}
	c.m.batchSize.Observe(float64(len(batch)))
	removed, err := c.commit(ctx, ds, unmatched)
	if err != nil {
		for _, d := range batch {
			d.nack()
		}
		c.m.nacked.Add(float64(len(batch)))
		c.log.Warn("batch nacked", "count", len(batch), "err", err)
		return nil, err
	}
	now := c.o.Now()
	var (
		newest time.Time
		maxLag time.Duration
	)
	for _, d := range batch {
		d.ack()
		if d.act.Kind != Remove {
			c.m.ignored.WithLabelValues(string(d.act.Reason)).Inc()
		}
		if !d.act.EventTime.IsZero() {
			lag := max(now.Sub(d.act.EventTime), 0)
			c.m.lag.Observe(lag.Seconds())
			maxLag = max(maxLag, lag)
			if d.act.EventTime.After(newest) {
				newest = d.act.EventTime
			}
		}
	}
	c.noteProgress(ctx, now, newest, maxLag)
	c.applied.Add(int64(len(batch)))
	c.m.applied.Add(float64(len(batch)))
	c.m.tracesRemoved.Add(float64(len(removed)))
	c.log.Debug("batch applied", "count", len(batch), "removed", len(removed), "duration", time.Since(start))
	return removed, nil
}

// commit runs the batch's deletions with a context bounded by ApplyTimeout,
// or, once ctx is done, by ShutdownTimeout on a context that is not
// cancelled, so the batch in hand still commits on a clean stop.
func (c *Consumer) commit(ctx context.Context, ds, unmatched []index.Deletion) ([]index.Removed, error) {
	timeout := c.o.ApplyTimeout
	if ctx.Err() != nil {
		ctx, timeout = context.WithoutCancel(ctx), c.o.ShutdownTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	removed, err := c.db.RemoveManyWithLayers(ctx, ds)
	if err != nil {
		return nil, fmt.Errorf("apply %d deletions: %w", len(ds), err)
	}
	if len(unmatched) > 0 {
		if err := c.o.Unmatched(ctx, unmatched); err != nil {
			return nil, fmt.Errorf("apply %d unmatched deletions: %w", len(unmatched), err)
		}
	}
	return removed, nil
}

// layerWorker deletes the layer objects of removed traces, a few at a time.
// Best effort: an object already gone is fine, and one that cannot be
// deleted is logged and left to the bucket's lifecycle rule.
func (c *Consumer) layerWorker(ctx context.Context, q <-chan []index.Removed) {
	for removed := range q {
		var g errgroup.Group
		g.SetLimit(defaultLayerWorkers)
		for _, r := range removed {
			for n := 1; n <= r.Layers; n++ {
				key := traces.LayerKey(r.Canvas, r.ID, n)
				g.Go(func() error {
					err := c.layers.Delete(ctx, key, 0)
					if err != nil && !errors.Is(err, traces.ErrNotFound) {
						c.m.layerErrors.Inc()
						c.log.Warn("layer not deleted", "canvas_id", r.Canvas.String(), "trace_id", r.ID.String(), "err", err)
						return nil
					}
					c.m.layersDeleted.Inc()
					return nil
				})
			}
		}
		_ = g.Wait()
	}
}

// wait blocks for d or until ctx is done.
func wait(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
