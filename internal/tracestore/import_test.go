package tracestore_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
	"github.com/tracegw/tracegw/internal/ttl"
)

// flakyRenewer is the real GC whose first RenewToplevels fails (a fault
// the test cannot cause for real); it counts the calls.
type flakyRenewer struct {
	*ttl.GC
	calls atomic.Int32
}

func (f *flakyRenewer) RenewToplevels(ctx context.Context, c traces.CanvasID, tlids []traces.TLID) error {
	if f.calls.Add(1) == 1 {
		return fmt.Errorf("renew: %w", traces.ErrUnavailable)
	}
	return f.GC.RenewToplevels(ctx, c, tlids)
}

// An imported trace older than GC's renewal threshold gets its own
// timestamp as customTime and its toplevel's keepers renewed before Import
// returns; when that renewal fails the import fails (unavailable), and its
// retry, which finds the trace stored, renews. A young imported trace is
// left to GC's passes; a trace without its ID is refused.
func TestImportRenewsOldKeepers(t *testing.T) {
	t.Parallel()
	r := newExecRig(t)
	ctx := t.Context()
	gc, err := ttl.New(r.gcs, r.db, ttl.DefaultPolicy(), r.now, nil, nil, ttl.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ren := &flakyRenewer{GC: gc}
	svc := tracestore.New(r.gcs, r.db, tracestore.Options{Now: r.now, Renewer: ren})

	if _, err := svc.Import(ctx, r.c, &traces.Trace{RootTLID: 3}); !errors.Is(err, traces.ErrInvalid) {
		t.Errorf("Import without an ID = %v, want invalid", err)
	}
	ts := r.now().Add(-20 * 24 * time.Hour).UTC().Truncate(time.Millisecond)
	old := &traces.Trace{ID: traces.NewTraceID(ts), RootTLID: 3, Timestamp: ts}
	if _, err := svc.Import(ctx, r.c, old); !errors.Is(err, traces.ErrUnavailable) {
		t.Fatalf("Import with a failing renewal = %v, want unavailable", err)
	}
	info, err := r.gcs.Stat(ctx, traces.TraceKey(r.c, old.ID))
	if err != nil {
		t.Fatal(err)
	}
	if !info.CustomTime.Equal(ts.Truncate(time.Second)) {
		t.Errorf("imported object's customTime = %s, want its timestamp %s", info.CustomTime, ts)
	}
	saved, err := svc.Import(ctx, r.c, &traces.Trace{ID: old.ID, RootTLID: 3, Timestamp: ts})
	if err != nil || saved.Created {
		t.Fatalf("retried Import = %+v, %v; want the stored trace", saved, err)
	}
	if info, err = r.gcs.Stat(ctx, traces.TraceKey(r.c, old.ID)); err != nil || info.CustomTime.Before(r.now().Add(-time.Minute)) {
		t.Errorf("the keeper's customTime after the retry = %s, %v; want it renewed to now", info.CustomTime, err)
	}

	calls := ren.calls.Load()
	young := r.now().Add(-time.Hour).UTC().Truncate(time.Millisecond)
	if _, err := svc.Import(ctx, r.c, &traces.Trace{ID: traces.NewTraceID(young), RootTLID: 3, Timestamp: young}); err != nil {
		t.Fatal(err)
	}
	if got := ren.calls.Load(); got != calls {
		t.Errorf("a young import renewed at once (%d calls, want %d): GC's passes renew it in time", got, calls)
	}
}
