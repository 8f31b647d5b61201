package bench

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Result is one measured cell: throughput and latency of the calls that
// succeeded, and the errors of those that did not.
type Result struct {
	Ops     int           `json:"ops"`    // calls that succeeded
	Errors  int           `json:"errors"` // calls that failed
	Elapsed time.Duration `json:"elapsed_ns"`
	PerSec  float64       `json:"per_sec"` // Ops per second of Elapsed
	// Latency quantiles of the calls that succeeded.
	P50      time.Duration `json:"p50_ns"`
	P95      time.Duration `json:"p95_ns"`
	P99      time.Duration `json:"p99_ns"`
	FirstErr string        `json:"first_error,omitempty"`
}

// bounds caps a cell in count and time, whichever comes first.
type bounds struct {
	maxOps int
	maxDur time.Duration
}

// runLoad calls fn from conc workers until b.maxOps calls have started or
// b.maxDur has passed; i numbers the calls from 0. Every worker first makes
// one unmeasured call (connections, caches), numbered from b.maxOps up.
func runLoad(ctx context.Context, conc int, b bounds, fn func(ctx context.Context, i int) error) Result {
	var warm sync.WaitGroup
	for w := range conc {
		warm.Add(1)
		go func() { defer warm.Done(); _ = fn(ctx, b.maxOps+w) }()
	}
	warm.Wait()

	var (
		next     atomic.Int64
		mu       sync.Mutex
		all      []time.Duration
		errs     int
		firstErr string
		wg       sync.WaitGroup
	)
	start := time.Now()
	deadline := start.Add(b.maxDur)
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, b.maxOps/conc+1)
			var nerr int
			var ferr string
			for ctx.Err() == nil && time.Now().Before(deadline) {
				i := int(next.Add(1) - 1)
				if i >= b.maxOps {
					break
				}
				t0 := time.Now()
				err := fn(ctx, i)
				d := time.Since(t0)
				if err != nil {
					nerr++
					if ferr == "" {
						ferr = err.Error()
					}
					continue
				}
				lat = append(lat, d)
			}
			mu.Lock()
			all = append(all, lat...)
			errs += nerr
			if firstErr == "" {
				firstErr = ferr
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	return summarize(all, errs, firstErr, time.Since(start))
}

// summarize turns the latencies of the calls that succeeded (in any
// order; sorted in place) into a Result over elapsed.
func summarize(lat []time.Duration, errs int, firstErr string, elapsed time.Duration) Result {
	slices.Sort(lat)
	r := Result{Ops: len(lat), Errors: errs, Elapsed: elapsed, FirstErr: firstErr}
	if elapsed > 0 {
		r.PerSec = float64(len(lat)) / elapsed.Seconds()
	}
	r.P50, r.P95, r.P99 = quantile(lat, 0.50), quantile(lat, 0.95), quantile(lat, 0.99)
	return r
}

// quantile of sorted durations by nearest rank: the element at rank
// q·n rounded to the nearest integer (at least the first); 0 when there
// are none.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
