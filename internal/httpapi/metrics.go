package httpapi

import (
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/tracegw/tracegw/internal/metrics"
)

// metrics are the HTTP layer's Prometheus collectors, registered into the
// one registry the process passes in (Options.Registerer).
type httpMetrics struct {
	requests   *prometheus.CounterVec   // route, code
	latency    *prometheus.HistogramVec // route
	savedBytes *prometheus.CounterVec   // route
}

func newMetrics(reg prometheus.Registerer) *httpMetrics {
	return &httpMetrics{
		requests: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tracegw_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"})),
		latency: metrics.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tracegw_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"})),
		savedBytes: metrics.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tracegw_saved_bytes_total",
			Help: "Request body bytes of successful writes (saves, replaces, layers, unmatched requests), by route.",
		}, []string{"route"})),
	}
}

// observe records one answered request. route is a registered pattern or
// "unmatched", so label cardinality stays bounded whatever paths arrive.
func (m *httpMetrics) observe(route string, status int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

// writeRoutes are the routes whose body is stored: their bytes count as saved.
var writeRoutes = map[string]bool{
	"POST /v1/canvases/{canvasID}/traces":                            true,
	"PUT /v1/canvases/{canvasID}/traces/{traceID}":                   true,
	"POST /v1/canvases/{canvasID}/traces/{traceID}/function-results": true,
	"POST /v1/canvases/{canvasID}/unmatched-requests":                true,
}

// countingBody counts the bytes a handler reads from a request body.
type countingBody struct {
	io.ReadCloser
	n int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	return n, err
}

// MetricsHandler serves g in the Prometheus text format, for an admin
// listener (Options.Metrics puts the same handler on the API's own mux).
func MetricsHandler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{})
}
