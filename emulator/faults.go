package emulator

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// faultKinds are the request classes a fault can target.
var faultKinds = []string{"upload", "read", "metadata", "delete", "list", "any"}

type faultRule struct {
	kind   string
	count  int
	status int
}

// faults is the switch behind InjectFaults and /_emulator/faults.
type faults struct {
	mu    sync.Mutex
	rules []faultRule
}

func (f *faults) statusOr(status int) int {
	if status == 0 {
		return 503
	}
	return status
}

var errBadFault = errors.New("invalid fault")

// faultError is a refused fault rule: which field, and why.
type faultError struct{ field, msg string }

func (e *faultError) Error() string { return errBadFault.Error() + ": " + e.field + ": " + e.msg }

func (e *faultError) Unwrap() error { return errBadFault }

func (f *faults) add(kind string, count, status int) error {
	if !slices.Contains(faultKinds, kind) {
		return &faultError{"kind", fmt.Sprintf("%.40q, want one of %v", kind, faultKinds)}
	}
	if count <= 0 || count > MaxFaultCount {
		return &faultError{"count", fmt.Sprintf("%d, want 1 to %d", count, MaxFaultCount)}
	}
	status = f.statusOr(status)
	if status < 400 || status > 599 {
		return &faultError{"status", fmt.Sprintf("%d, want 4xx or 5xx", status)}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.rules) >= maxFaultRules {
		return &faultError{"count", fmt.Sprintf("%d fault rules are waiting already; clear them first", len(f.rules))}
	}
	f.rules = append(f.rules, faultRule{kind: kind, count: count, status: status})
	return nil
}

// take consumes one matching fault for a request of the given kind ("" for
// requests only "any" matches) and returns its status.
func (f *faults) take(kind string) (int, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.rules {
		r := &f.rules[i]
		if r.kind != "any" && (kind == "" || r.kind != kind) {
			continue
		}
		status := r.status
		r.count--
		if r.count == 0 {
			f.rules = slices.Delete(f.rules, i, i+1)
		}
		return status, true
	}
	return 0, false
}

func (f *faults) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rules = nil
}

// InjectFaults makes the next count GCS API calls of the given kind
// (upload, read, metadata, delete, list or any) fail with status (0 means
// 503) and a GCS-style JSON error body. Invalid arguments are logged and
// ignored; the HTTP route reports them as 400.
func (e *Emulator) InjectFaults(kind string, count, status int) {
	if err := e.faults.add(kind, count, status); err != nil {
		e.log.Warn("ignore fault", "err", err)
	}
}

// ClearFaults drops every fault InjectFaults armed and not yet fired.
func (e *Emulator) ClearFaults() { e.faults.clear() }
