package ttl

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics mirrors Summary. Dry runs record nothing.
type metrics struct {
	examined, renewed, fresh, held, gone, failed prometheus.Counter
	patches, canvases, skipped                   prometheus.Counter
	passes                                       *prometheus.CounterVec
	passSeconds                                  prometheus.Histogram
	lastSuccess                                  prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "tracegw_gc_" + name, Help: help}))
	}
	return &metrics{
		examined: counter("examined_total", "Keepers of due toplevels that GC examined."),
		renewed:  counter("renewed_total", "Keepers whose customTime GC renewed."),
		fresh:    counter("already_fresh_total", "Keepers GC found young enough (or already renewed)."),
		held:     counter("held_total", "Held keepers GC skipped."),
		gone:     counter("gone_total", "Keepers whose object was gone; their index rows were removed."),
		failed:   counter("failed_total", "Keepers GC failed to renew (retried next pass)."),
		patches:  counter("patches_total", "customTime PATCH requests GC issued (traces and layers)."),
		canvases: counter("canvases_total", "Due canvases GC processed."),
		skipped:  counter("canvases_skipped_total", "Due canvases GC skipped because another replica held them."),
		passes: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tracegw_gc_passes_total", Help: "GC passes by result (ok, error).",
		}, []string{"result"})),
		passSeconds: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tracegw_gc_pass_seconds", Help: "Duration of GC passes.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		})),
		lastSuccess: register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tracegw_gc_last_success_timestamp_seconds",
			Help: "When the last GC pass without errors ended (alert if older than the renew margin minus an interval).",
		})),
	}
}

// register registers c with reg (if any), reusing a collector already
// registered under the same name, so two GCs on one registry share them.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if reg == nil {
		return c
	}
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// A clash of a different type is a programming error; the
		// unregistered collector still counts, it is just not exported.
	}
	return c
}

func (m *metrics) record(s Summary, err error, end time.Time) {
	m.examined.Add(float64(s.Examined))
	m.renewed.Add(float64(s.Renewed))
	m.fresh.Add(float64(s.AlreadyFresh))
	m.held.Add(float64(s.Held))
	m.gone.Add(float64(s.Gone))
	m.failed.Add(float64(s.Failed))
	m.patches.Add(float64(s.Patches))
	m.canvases.Add(float64(s.Canvases))
	m.skipped.Add(float64(s.Skipped))
	m.passSeconds.Observe(s.Duration.Seconds())
	if err != nil {
		m.passes.WithLabelValues("error").Inc()
		return
	}
	m.passes.WithLabelValues("ok").Inc()
	m.lastSuccess.Set(float64(end.UnixMilli()) / 1000)
}
