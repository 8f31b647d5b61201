package history

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"

	"cloud.google.com/go/pubsub/v2"
)

// relay stands between the emulator's topic and the consumer's: it acks
// what GCS published and republishes it later, in seeded order, some
// copies late (by up to maxDelay releases, which may span clock steps and
// retention periods), some twice.
type relay struct {
	pub      *pubsub.Publisher
	late     float64
	dup      float64
	maxDelay int

	received, republished atomic.Int64

	mu       sync.Mutex
	rng      *rand.Rand
	incoming []relayed
	pending  []relayed
	ticks    int
}

type relayed struct {
	data  []byte
	attrs map[string]string
	due   int
}

func (r *relay) run(ctx context.Context, sub *pubsub.Subscriber) error {
	return sub.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		r.mu.Lock()
		r.incoming = append(r.incoming, relayed{data: slices.Clone(m.Data), attrs: m.Attributes})
		r.mu.Unlock()
		r.received.Add(1)
		m.Ack()
	})
}

func (m relayed) sortKey() string {
	return m.attrs["objectId"] + "\x00" + m.attrs["objectGeneration"] + "\x00" + m.attrs["eventType"] + "\x00" + m.attrs["overwrittenByGeneration"]
}

// release gives every message that arrived since the last release its
// delay (and maybe a duplicate), then republishes, in shuffled order, what
// is due (everything if all).
func (r *relay) release(ctx context.Context, all bool) error {
	r.mu.Lock()
	in := r.incoming
	r.incoming = nil
	// Arrival order varies from run to run; the seeded choices must not.
	slices.SortStableFunc(in, func(a, b relayed) int { return cmpStrings(a.sortKey(), b.sortKey()) })
	for _, m := range in {
		copies := 1
		if r.rng.Float64() < r.dup {
			copies = 2
		}
		for range copies {
			m.due = r.ticks
			if r.rng.Float64() < r.late {
				m.due += 1 + r.rng.IntN(r.maxDelay)
			}
			r.pending = append(r.pending, m)
		}
	}
	var out, keep []relayed
	for _, m := range r.pending {
		if all || m.due <= r.ticks {
			out = append(out, m)
		} else {
			keep = append(keep, m)
		}
	}
	r.pending = keep
	r.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	r.ticks++
	r.mu.Unlock()
	for _, m := range out {
		if _, err := r.pub.Publish(ctx, &pubsub.Message{Data: m.data, Attributes: m.attrs}).Get(ctx); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		r.republished.Add(1)
	}
	return nil
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// held reports how many messages the relay is holding back.
func (r *relay) held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) + len(r.incoming)
}
