package notify

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

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
	testutil.WaitFor(t, 5*time.Second, func() bool {
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
