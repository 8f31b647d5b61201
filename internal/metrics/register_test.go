package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestRegisterSharesAndRefusesConflicts(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "tracegw_test_total", Help: "A test counter."}
	a := Register(reg, prometheus.NewCounter(opts))
	b := Register(reg, prometheus.NewCounter(opts))
	if a != b {
		t.Error("the second registration did not return the first collector")
	}
	a.Inc()
	if got := Register[prometheus.Counter](nil, prometheus.NewCounter(opts)); got == a {
		t.Error("a nil registry returned a registered collector")
	}
	defer func() {
		if recover() == nil {
			t.Error("a conflicting definition did not panic")
		}
	}()
	Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "tracegw_test_total", Help: "Another kind."}))
}
