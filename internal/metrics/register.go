// Package metrics registers Prometheus collectors on the registry a process
// passes in, the one way every package does it: never on a global
// registry, and sharing rather than failing when the same collector is
// registered twice (two components of one process on one registry).
package metrics

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on reg and returns it, or the collector already
// registered there under the same description. A nil reg registers
// nothing. Conflicting definitions under one name are a programming error
// and panic.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
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
		panic(err)
	}
	return c
}
