package canvases_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/canvases"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/ttl"
)

// policyOf is a PolicySource with a fixed keep.
type policyOf int

func (p policyOf) CurrentPolicy(context.Context) (time.Duration, int) { return 7 * ttl.Day, int(p) }

// renewer counts RenewToplevels calls and fails them when told to.
type renewer struct {
	calls atomic.Int32
	err   error
}

func (r *renewer) RenewToplevels(ctx context.Context, c traces.CanvasID, tlids []traces.TLID) error {
	r.calls.Add(1)
	return r.err
}

// TestCanvasPolicy: a canvas without its own keep follows the server's; a
// keep out of bounds is refused naming keepPerToplevel and changes
// nothing; setting and resetting it is answered with the keep in effect;
// a raise whose renewal fails is made, and answered RenewalPending; a
// deleted canvas refuses.
func TestCanvasPolicy(t *testing.T) {
	t.Parallel()
	r := newExecRig(t)
	ctx := t.Context()
	ren := &renewer{}
	svc := canvases.New(r.gcs, r.db, canvases.Options{Now: r.now, Policy: policyOf(12), Renewer: ren})
	want := func(what string, got canvases.Policy, err error, keep int, own, pending bool) {
		t.Helper()
		if err != nil || got.Keep != keep || got.Own != own || got.RenewalPending != pending {
			t.Errorf("%s = %+v, %v; want keep %d own %v pending %v", what, got, err, keep, own, pending)
		}
	}
	p, err := svc.Policy(ctx, r.c)
	want("Policy of a new canvas", p, err, 12, false, false)
	for _, keep := range []int{-1, 1001, 100000} {
		_, err := svc.SetPolicy(ctx, r.c, keep)
		var fe *traces.FieldError
		if !errors.As(err, &fe) || fe.Field != "keepPerToplevel" {
			t.Errorf("SetPolicy(%d): %v, want a FieldError naming keepPerToplevel", keep, err)
		}
	}
	if ren.calls.Load() != 0 {
		t.Errorf("a refused change renewed")
	}
	p, err = svc.SetPolicy(ctx, r.c, 25)
	want("SetPolicy(25)", p, err, 25, true, false)
	p, err = svc.Policy(ctx, r.c)
	want("Policy after SetPolicy(25)", p, err, 25, true, false)
	p, err = svc.SetPolicy(ctx, r.c, 0)
	want("SetPolicy(reset)", p, err, 12, false, false)
	ren.err = fmt.Errorf("renew: %w", context.DeadlineExceeded)
	p, err = svc.SetPolicy(ctx, r.c, 1000)
	want("SetPolicy(1000) with a renewal cut short", p, err, 1000, true, true)
	if got, err := r.db.CanvasKeep(ctx, r.c); got != 1000 || err != nil {
		t.Errorf("CanvasKeep after a cut-short raise = %d, %v; want the change made", got, err)
	}
	if _, err := svc.DeleteCanvas(ctx, r.c); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetPolicy(ctx, r.c, 5); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("SetPolicy on a deleted canvas: %v, want ErrNotFound", err)
	}
}
