package httpapi

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/tracegw/tracegw/internal/metrics"
	"golang.org/x/sync/semaphore"
)

// The process's memory follows the request bodies it holds, not the number
// of connections: every body is read into memory whole (and decoded,
// re-encoded and compressed from there), so a budget caps the bytes of
// bodies in flight across the server. A request reserves its body's size
// before reading it (its Content-Length, or, for a chunked body, the buffer
// as it grows) and keeps the reservation until its handler returns, since
// the decoded trace aliases the body. Past the budget it waits a moment and
// then gets 503 unavailable with Retry-After.

// Defaults of Options.MaxInflightBytes and Options.InflightWait.
const (
	DefaultMaxInflightBytes = 256 << 20
	DefaultInflightWait     = 2 * time.Second
)

// chunkReserve is how much a chunked body's reservation grows at least.
const chunkReserve = 64 << 10

// errBusy is a request refused because the bodies in flight fill the budget.
var errBusy = errors.New("too many request bodies in flight")

// bodyBudget is the process-wide cap on request body bytes in memory. Safe
// for concurrent use.
type bodyBudget struct {
	sem      *semaphore.Weighted
	size     int64
	wait     time.Duration
	inflight prometheus.Gauge
	refused  prometheus.Counter
}

func newBodyBudget(size int64, wait time.Duration, reg prometheus.Registerer) *bodyBudget {
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	return &bodyBudget{
		sem: semaphore.NewWeighted(size), size: size, wait: wait,
		inflight: metrics.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tracegw_http_inflight_body_bytes",
			Help: "Bytes of request bodies reserved in memory right now (bounded by --max-inflight-bytes).",
		})),
		refused: metrics.Register(reg, prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tracegw_http_body_budget_refused_total",
			Help: "Requests answered 503 because the bodies in flight filled --max-inflight-bytes.",
		})),
	}
}

// reservation is one request's share of the budget; the zero value holds
// nothing. Not safe for concurrent use (one request reads its body once).
type reservation struct {
	b *bodyBudget
	n int64
}

// grow reserves n more bytes, waiting at most the budget's wait (and never
// past ctx) for others to release theirs. Failing, it wraps errBusy.
func (r *reservation) grow(ctx context.Context, n int64) error {
	if n <= 0 {
		return nil
	}
	b := r.b
	if r.n+n > b.size {
		b.refused.Inc()
		return fmt.Errorf("a body of %d bytes exceeds the budget of %d: %w", r.n+n, b.size, errBusy)
	}
	if !b.sem.TryAcquire(n) {
		wctx, cancel := context.WithTimeout(ctx, b.wait)
		err := b.sem.Acquire(wctx, n)
		cancel()
		if err != nil {
			b.refused.Inc()
			return fmt.Errorf("reserve %d bytes: %w", n, errBusy)
		}
	}
	r.n += n
	b.inflight.Add(float64(n))
	return nil
}

// release returns everything the request reserved.
func (r *reservation) release() {
	if r.n > 0 {
		r.b.sem.Release(r.n)
		r.b.inflight.Sub(float64(r.n))
		r.n = 0
	}
}
