package notify

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/tracegw/tracegw/internal/metrics"
)

// metrics are the consumer's Prometheus series, registered on the registry
// the caller passes in (never a global one).
type notifyMetrics struct {
	received      prometheus.Counter
	applied       prometheus.Counter
	ignored       *prometheus.CounterVec
	malformed     prometheus.Counter
	nacked        prometheus.Counter
	tracesRemoved prometheus.Counter
	layersDeleted prometheus.Counter
	layerErrors   prometheus.Counter
	batchSize     prometheus.Histogram
	lag           prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *notifyMetrics {
	m := &notifyMetrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tracegw_notify_received_total",
			Help: "Notifications received, redeliveries included.",
		}),
		applied: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tracegw_notify_applied_total",
			Help: "Notifications handled for good and acked: deletions committed, plus ignored and malformed ones.",
		}),
		ignored: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tracegw_notify_ignored_total",
			Help: "Notifications acked without an index change, by reason.",
		}, []string{"reason"}),
		malformed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tracegw_notify_malformed_total",
			Help: "Notifications acked because they could not be read as GCS notifications.",
		}),
		nacked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tracegw_notify_nacked_total",
			Help: "Notifications nacked because their batch failed to commit (they are redelivered).",
		}),
		tracesRemoved: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tracegw_notify_traces_removed_total",
			Help: "Traces whose index rows a deletion removed.",
		}),
		layersDeleted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tracegw_notify_layers_deleted_total",
			Help: "Layer objects of removed traces deleted (or found gone).",
		}),
		layerErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tracegw_notify_layer_delete_errors_total",
			Help: "Layer objects of removed traces that could not be deleted (they expire on their own).",
		}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tracegw_notify_batch_size",
			Help:    "Deletions per transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12), // 1 … 2048
		}),
		lag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "tracegw_notify_lag_seconds",
			Help:    "Time from the notification's eventTime to the commit of its deletion.",
			Buckets: prometheus.ExponentialBuckets(0.05, 4, 12), // 50 ms … 2.4 days
		}),
	}
	for _, r := range []Reason{ReasonOverwrite, ReasonEventType, ReasonForeignBucket, ReasonForeignKey, ReasonLayer, ReasonUnmatched} {
		m.ignored.WithLabelValues(string(r))
	}
	m.received, m.applied = metrics.Register(reg, m.received), metrics.Register(reg, m.applied)
	m.ignored, m.malformed = metrics.Register(reg, m.ignored), metrics.Register(reg, m.malformed)
	m.nacked, m.tracesRemoved = metrics.Register(reg, m.nacked), metrics.Register(reg, m.tracesRemoved)
	m.layersDeleted, m.layerErrors = metrics.Register(reg, m.layersDeleted), metrics.Register(reg, m.layerErrors)
	m.batchSize, m.lag = metrics.Register(reg, m.batchSize), metrics.Register(reg, m.lag)
	return m
}
