package main

import (
	"context"
	"errors"
	"iter"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
)

// meteredGCS is objstore.GCS with every call counted by kind and outcome
// (tracegw_gcs_calls_total). It embeds the adapter, so it satisfies every
// interface *objstore.GCS does; it is safe for concurrent use.
type meteredGCS struct {
	*objstore.GCS
	calls *prometheus.CounterVec
}

func newMeteredGCS(g *objstore.GCS, reg prometheus.Registerer) *meteredGCS {
	calls := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tracegw_gcs_calls_total",
		Help: "Cloud Storage adapter calls, by kind and outcome (ok, not_found, precondition_failed, unavailable, error). One call may be several HTTP attempts.",
	}, []string{"kind", "outcome"})
	reg.MustRegister(calls)
	return &meteredGCS{GCS: g, calls: calls}
}

func (m *meteredGCS) count(kind string, err error) {
	outcome := "ok"
	switch {
	case err == nil:
	case errors.Is(err, traces.ErrNotFound):
		outcome = "not_found"
	case errors.Is(err, traces.ErrPreconditionFailed):
		outcome = "precondition_failed"
	case errors.Is(err, traces.ErrUnavailable):
		outcome = "unavailable"
	default:
		outcome = "error"
	}
	m.calls.WithLabelValues(kind, outcome).Inc()
}

// Create counts objstore.GCS.Create.
func (m *meteredGCS) Create(ctx context.Context, key string, body []byte, o traces.NewObject) (traces.ObjectInfo, error) {
	info, err := m.GCS.Create(ctx, key, body, o)
	m.count("create", err)
	return info, err
}

// Replace counts objstore.GCS.Replace.
func (m *meteredGCS) Replace(ctx context.Context, key string, body []byte, o traces.NewObject, ifGeneration int64) (traces.ObjectInfo, error) {
	info, err := m.GCS.Replace(ctx, key, body, o, ifGeneration)
	m.count("replace", err)
	return info, err
}

// Open counts objstore.GCS.Open.
func (m *meteredGCS) Open(ctx context.Context, key string) ([]byte, traces.ObjectInfo, error) {
	b, info, err := m.GCS.Open(ctx, key)
	m.count("open", err)
	return b, info, err
}

// Stat counts objstore.GCS.Stat.
func (m *meteredGCS) Stat(ctx context.Context, key string) (traces.ObjectInfo, error) {
	info, err := m.GCS.Stat(ctx, key)
	m.count("stat", err)
	return info, err
}

// SetCustomTime counts objstore.GCS.SetCustomTime.
func (m *meteredGCS) SetCustomTime(ctx context.Context, key string, t time.Time, ifMetageneration int64) (traces.ObjectInfo, error) {
	info, err := m.GCS.SetCustomTime(ctx, key, t, ifMetageneration)
	m.count("set_custom_time", err)
	return info, err
}

// SetTemporaryHold counts objstore.GCS.SetTemporaryHold.
func (m *meteredGCS) SetTemporaryHold(ctx context.Context, key string, held bool, customTime time.Time) (traces.ObjectInfo, error) {
	info, err := m.GCS.SetTemporaryHold(ctx, key, held, customTime)
	m.count("set_hold", err)
	return info, err
}

// Delete counts objstore.GCS.Delete.
func (m *meteredGCS) Delete(ctx context.Context, key string, ifGeneration int64) error {
	err := m.GCS.Delete(ctx, key, ifGeneration)
	m.count("delete", err)
	return err
}

// Objects counts one "list" per listing (not per page), with the outcome
// of the listing as a whole.
func (m *meteredGCS) Objects(ctx context.Context, prefix string) iter.Seq2[traces.ObjectInfo, error] {
	return func(yield func(traces.ObjectInfo, error) bool) {
		var failed error
		defer func() { m.count("list", failed) }()
		for info, err := range m.GCS.Objects(ctx, prefix) {
			if err != nil {
				failed = err
			}
			if !yield(info, err) {
				return
			}
		}
	}
}
