package notify

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tracegw/tracegw/internal/traces"
)

// Message is one notification as the consumer sees it, whatever carried it.
// Ack and Nack are each called at most once, one of them exactly once.
type Message struct {
	ID         string
	Attributes map[string]string
	Data       []byte
	Ack, Nack  func()
}

// Source delivers messages to f, possibly concurrently, until ctx ends
// (then it returns nil, once every f has returned) or it fails for good;
// a subscription that does not exist fails wrapping traces.ErrNotFound.
// Delivery is at least once: a nacked or unacknowledged message comes again.
type Source interface {
	Receive(ctx context.Context, f func(context.Context, Message)) error
}

// Subscription is the Source of a Pub/Sub subscription: real Pub/Sub, its
// official emulator or pstest. Flow control allows maxOutstanding messages
// in hand (the consumer holds a batch until it commits, and fills the next
// meanwhile), so pass at least twice the consumer's MaxBatch.
func Subscription(sub *pubsub.Subscriber, maxOutstanding int) Source {
	rs := &sub.ReceiveSettings
	rs.MaxOutstandingMessages = max(rs.MaxOutstandingMessages, pubsub.DefaultReceiveSettings.MaxOutstandingMessages, maxOutstanding)
	return subscription{sub}
}

type subscription struct{ sub *pubsub.Subscriber }

func (s subscription) Receive(ctx context.Context, f func(context.Context, Message)) error {
	err := s.sub.Receive(ctx, func(ctx context.Context, m *pubsub.Message) {
		f(ctx, Message{ID: m.ID, Attributes: m.Attributes, Data: m.Data, Ack: m.Ack, Nack: m.Nack})
	})
	if status.Code(err) == codes.NotFound {
		// The subscription does not exist (or was deleted): the one
		// Pub/Sub answer the caller can act on, so it gets our sentinel.
		return fmt.Errorf("receive %s: %w: %w", s.sub, traces.ErrNotFound, err)
	}
	if err != nil {
		return fmt.Errorf("receive %s: %w", s.sub, err)
	}
	return nil
}

// Queue is an in-process, at-least-once message queue: the transport of
// `tracegw dev`, where the emulator and the consumer share a process and a
// Pub/Sub in between would only slow a burst of deletions down (pstest
// hands a subscriber one message per 10 ms tick). Publish appends; Receive
// hands messages to its callback in order; a nacked message is queued again
// after a short delay. Messages are lost with the process, as everything
// of dev's but its files is. Safe for concurrent use; one Receive at a time.
type Queue struct {
	mu      sync.Mutex
	pending []Message
	wake    chan struct{}
	seq     atomic.Int64
}

// NewQueue returns an empty queue.
func NewQueue() *Queue { return &Queue{wake: make(chan struct{}, 1)} }

// nackDelay is how long a nacked message waits before it is delivered
// again, so a failing consumer does not spin.
const nackDelay = 100 * time.Millisecond

// Publish queues one message; it never blocks and never fails. It has the
// shape of emulator.Options.Publish.
func (q *Queue) Publish(_ context.Context, _ string, data []byte, attrs map[string]string) error {
	q.push(Message{ID: fmt.Sprint(q.seq.Add(1)), Attributes: attrs, Data: data})
	return nil
}

func (q *Queue) push(m Message) {
	q.mu.Lock()
	q.pending = append(q.pending, m)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Len returns how many messages wait for delivery.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending)
}

// Receive delivers queued messages to f one after the other until ctx
// ends, and returns nil then. A message f nacks is queued again after
// nackDelay; one it never acks or nacks is not redelivered.
func (q *Queue) Receive(ctx context.Context, f func(context.Context, Message)) error {
	var redeliver sync.WaitGroup
	defer redeliver.Wait()
	for {
		q.mu.Lock()
		batch := q.pending
		q.pending = nil
		q.mu.Unlock()
		for i, m := range batch {
			if ctx.Err() != nil {
				q.mu.Lock()
				q.pending = append(batch[i:], q.pending...)
				q.mu.Unlock()
				return nil
			}
			var once sync.Once
			msg := m
			msg.Ack = func() { once.Do(func() {}) }
			msg.Nack = func() {
				once.Do(func() {
					redeliver.Go(func() {
						t := time.NewTimer(nackDelay)
						defer t.Stop()
						select {
						case <-t.C:
						case <-ctx.Done():
						}
						q.push(m)
					})
				})
			}
			f(ctx, msg)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-q.wake:
		}
	}
}
