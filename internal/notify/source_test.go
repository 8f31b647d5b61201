package notify

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// The queue delivers what was published in order, once when acked, and
// again after a nack.
func TestQueueAtLeastOnce(t *testing.T) {
	t.Parallel()
	q := NewQueue()
	for _, id := range []string{"a", "b", "c"} {
		if err := q.Publish(t.Context(), "topic", []byte(id), nil); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu   sync.Mutex
		seen []string
	)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- q.Receive(ctx, func(_ context.Context, m Message) {
			mu.Lock()
			seen = append(seen, string(m.Data))
			first := len(seen) == 2 // b, the first time
			mu.Unlock()
			if first {
				m.Nack()
				return
			}
			m.Ack()
		})
	}()
	testutil.WaitFor(t, 5*time.Second, "4 messages seen", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(seen) == 4
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Receive: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"a", "b", "c", "b"}; !slices.Equal(seen, want) {
		t.Errorf("delivered %v, want %v", seen, want)
	}
	if n := q.Len(); n != 0 {
		t.Errorf("%d messages left, want 0", n)
	}
}

// A subscription that does not exist fails Receive with traces.ErrNotFound
// (the one Pub/Sub answer a caller can act on: create it), never hangs.
func TestSubscriptionNotFound(t *testing.T) {
	t.Parallel()
	client, err := pubsub.NewClient(t.Context(), "p", testutil.PubSub(t)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err = Subscription(client.Subscriber("nowhere"), 10).Receive(ctx, func(context.Context, Message) {
		t.Error("a message from a subscription that does not exist")
	})
	if !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("Receive = %v, want it to wrap traces.ErrNotFound", err)
	}
}
