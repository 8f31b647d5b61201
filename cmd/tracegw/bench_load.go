package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// loadResult is one measured cell: throughput and latency of ops.
type loadResult struct {
	Ops      int           `json:"ops"`
	Errors   int           `json:"errors"`
	Elapsed  time.Duration `json:"elapsed_ns"`
	PerSec   float64       `json:"per_sec"`
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
func runLoad(ctx context.Context, conc int, b bounds, fn func(ctx context.Context, i int) error) loadResult {
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
	el := time.Since(start)
	slices.Sort(all)
	r := loadResult{Ops: len(all), Errors: errs, Elapsed: el, FirstErr: firstErr}
	if el > 0 {
		r.PerSec = float64(len(all)) / el.Seconds()
	}
	r.P50, r.P95, r.P99 = quantile(all, 0.50), quantile(all, 0.95), quantile(all, 0.99)
	return r
}

// quantile of sorted durations (nearest rank).
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
