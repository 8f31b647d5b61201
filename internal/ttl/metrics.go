package ttl

import (
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tracegw/tracegw/internal/index"
)

// metrics mirrors Summary, plus the pass health the alert rules in
// deploy/prometheus watch. Dry runs and interrupted passes record nothing.
type metrics struct {
	examined, renewed, fresh, held, gone, failed prometheus.Counter
	patches, canvases, skipped, holdsEnded       prometheus.Counter
	passes                                       *prometheus.CounterVec
	passSeconds                                  prometheus.Histogram
	lastSuccess, keeperDeadline, lastPass        prometheus.Gauge
	lastPassSeconds, consecutiveFailed           prometheus.Gauge
	overruns                                     prometheus.Counter
	interval, margin, retention, keep            prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) *metrics {
	counter := func(name, help string) prometheus.Counter {
		return register(reg, prometheus.NewCounter(prometheus.CounterOpts{Name: "tracegw_gc_" + name, Help: help}))
	}
	gauge := func(name, help string) prometheus.Gauge {
		return register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "tracegw_gc_" + name, Help: help}))
	}
	return &metrics{
		examined:   counter("examined_total", "Keepers of due toplevels that GC examined."),
		renewed:    counter("renewed_total", "Keepers whose customTime GC renewed."),
		fresh:      counter("already_fresh_total", "Keepers GC found young enough (or already renewed)."),
		held:       counter("held_total", "Held keepers GC skipped."),
		gone:       counter("gone_total", "Keepers whose object was gone; their index rows were removed."),
		failed:     counter("failed_total", "Keepers GC failed to renew (retried next pass)."),
		patches:    counter("patches_total", "customTime PATCH requests GC issued (traces and layers)."),
		canvases:   counter("canvases_total", "Due canvases GC processed."),
		skipped:    counter("canvases_skipped_total", "Due canvases GC skipped because another replica held them."),
		holdsEnded: counter("holds_ended_total", "Holds GC released because their end (until) had come."),
		passes: register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tracegw_gc_passes_total",
			Help: "GC passes by result: ok, failed (some keeper or canvas failed), cut_short (hit its deadline of one interval), refused (policy disagreement).",
		}, []string{"result"})),
		passSeconds: register(reg, prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "tracegw_gc_pass_seconds", Help: "Duration of GC passes.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10),
		})),
		lastSuccess: gauge("last_success_timestamp_seconds", "When the last fully successful GC pass (no failures, not cut short) ended."),
		keeperDeadline: gauge("keeper_deadline_timestamp_seconds",
			"The earliest moment a keeper could be deleted if GC stopped now: start of the last fully successful pass plus the renew margin."),
		lastPass:          gauge("last_pass_timestamp_seconds", "When the last GC pass ended, whatever its outcome."),
		lastPassSeconds:   gauge("last_pass_duration_seconds", "Duration of the last GC pass."),
		consecutiveFailed: gauge("consecutive_failed_passes", "GC passes in a row that were not fully successful (0 after a successful one)."),
		overruns:          counter("pass_overruns_total", "GC passes that took more than half the GC interval (at the whole interval a pass is cut short)."),
		interval:          gauge("interval_seconds", "The configured time between GC passes (--gc-interval), also each pass's deadline."),
		margin:            gauge("renew_margin_seconds", "The configured renew margin (--renew-margin)."),
		retention:         gauge("effective_retention_seconds", "The retention the last pass renewed against: the strictest that GCS may apply."),
		keep:              gauge("keep_per_toplevel", "The keep-N the last pass applied."),
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

// configure exports the configured schedule.
func (m *metrics) configure(p Policy) {
	m.interval.Set(p.Interval.Seconds())
	m.margin.Set(p.Margin.Seconds())
	m.retention.Set(p.Retention.Seconds())
	m.keep.Set(float64(p.Keep))
}

func (m *metrics) record(s Summary, r index.PassRecord, p Policy) {
	m.examined.Add(float64(s.Examined))
	m.renewed.Add(float64(s.Renewed))
	m.fresh.Add(float64(s.AlreadyFresh))
	m.held.Add(float64(s.Held))
	m.gone.Add(float64(s.Gone))
	m.failed.Add(float64(s.Failed))
	m.patches.Add(float64(s.Patches))
	m.canvases.Add(float64(s.Canvases))
	m.skipped.Add(float64(s.Skipped))
	m.holdsEnded.Add(float64(s.HoldsEnded))
	m.passSeconds.Observe(s.Duration.Seconds())
	m.lastPassSeconds.Set(s.Duration.Seconds())
	m.lastPass.Set(unixSeconds(r.EndedAt))
	if s.Duration > time.Duration(float64(p.Interval)*OverrunFraction) {
		m.overruns.Inc()
	}
	if r.RetentionDays > 0 {
		m.retention.Set((time.Duration(r.RetentionDays) * Day).Seconds())
		m.keep.Set(float64(r.Keep))
	}
	m.passes.WithLabelValues(r.Outcome).Inc()
	if r.Outcome != index.PassOK {
		m.consecutiveFailed.Inc()
		return
	}
	m.consecutiveFailed.Set(0)
	m.success(r.EndedAt, r.KeeperDeadline)
}

// success moves the last-success and keeper-deadline gauges forward (never
// back: several GCs may share a registry, and a restart starts them from
// the pass history).
func (m *metrics) success(end, deadline time.Time) {
	if v := unixSeconds(end); v > gaugeValue(m.lastSuccess) {
		m.lastSuccess.Set(v)
	}
	if v := unixSeconds(deadline); v > gaugeValue(m.keeperDeadline) {
		m.keeperDeadline.Set(v)
	}
}

func unixSeconds(t time.Time) float64 { return float64(t.UnixMilli()) / 1000 }

func gaugeValue(g prometheus.Gauge) float64 {
	var d dto.Metric
	if err := g.Write(&d); err != nil {
		return 0
	}
	return d.GetGauge().GetValue()
}
