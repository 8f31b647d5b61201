package bench

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestQuantile(t *testing.T) {
	ms := func(ns ...int) []time.Duration {
		out := make([]time.Duration, len(ns))
		for i, n := range ns {
			out[i] = time.Duration(n) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	for _, tc := range []struct {
		name   string
		sorted []time.Duration
		q      float64
		want   time.Duration
	}{
		{"none", nil, 0.99, 0},
		{"one", ms(7), 0.5, 7 * time.Millisecond},
		{"one, p99", ms(7), 0.99, 7 * time.Millisecond},
		{"p50 of 1..100 is the 50th", ms(hundred...), 0.50, 50 * time.Millisecond},
		{"p95 of 1..100 is the 95th", ms(hundred...), 0.95, 95 * time.Millisecond},
		{"p99 of 1..100 is the 99th", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p99 of 10 is the last", ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.99, 10 * time.Millisecond},
		{"p50 of 4 rounds to the 2nd", ms(1, 2, 3, 4), 0.50, 2 * time.Millisecond},
		{"p50 of 3 rounds to the 2nd", ms(1, 2, 3), 0.50, 2 * time.Millisecond},
		{"q 0 is the first", ms(1, 2, 3), 0, time.Millisecond},
		{"q 1 is the last", ms(1, 2, 3), 1, 3 * time.Millisecond},
	} {
		if got := quantile(tc.sorted, tc.q); got != tc.want {
			t.Errorf("%s: quantile(%v) = %v, want %v", tc.name, tc.q, got, tc.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	lat := []time.Duration{4 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond}
	got := summarize(lat, 2, "boom", 2*time.Second)
	want := Result{Ops: 4, Errors: 2, Elapsed: 2 * time.Second, PerSec: 2,
		P50: 2 * time.Millisecond, P95: 4 * time.Millisecond, P99: 4 * time.Millisecond, FirstErr: "boom"}
	if got != want {
		t.Errorf("summarize = %+v, want %+v", got, want)
	}
	if got := summarize(nil, 0, "", 0); got != (Result{}) {
		t.Errorf("summarize of nothing = %+v, want zero", got)
	}
}

// TestRunLoad checks the call numbering: one unmeasured warm-up per worker
// numbered from maxOps up, then every measured call exactly once, errors
// counted apart from the latencies.
func TestRunLoad(t *testing.T) {
	const conc, ops = 4, 200
	var mu sync.Mutex
	var calls []int
	r := runLoad(context.Background(), conc, bounds{ops, time.Hour}, func(_ context.Context, i int) error {
		mu.Lock()
		calls = append(calls, i)
		mu.Unlock()
		if i < ops && i%10 == 3 {
			return fmt.Errorf("call %d failed", i)
		}
		return nil
	})
	slices.Sort(calls)
	want := make([]int, ops+conc)
	for i := range want {
		want[i] = i
	}
	if !slices.Equal(calls, want) {
		t.Errorf("calls = %v, want 0..%d once each", calls, ops+conc-1)
	}
	if r.Ops != 180 || r.Errors != 20 || r.FirstErr == "" || r.PerSec <= 0 || r.P50 > r.P95 || r.P95 > r.P99 {
		t.Errorf("runLoad = %+v, want 180 ops, 20 errors with the first one, ordered quantiles", r)
	}

	// A cancelled context starts no measured call.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r = runLoad(ctx, 2, bounds{ops, time.Hour}, func(ctx context.Context, i int) error { return ctx.Err() })
	if r.Ops != 0 || r.Errors != 0 {
		t.Errorf("runLoad after cancel = %+v, want no measured call", r)
	}
}
