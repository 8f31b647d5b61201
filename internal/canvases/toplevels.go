package canvases

import (
	"context"
	"fmt"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// toplevelIndex is what forgetting a toplevel needs from the index.
type toplevelIndex interface {
	// ForgetToplevel marks the toplevel deleted at time at.
	ForgetToplevel(ctx context.Context, c traces.CanvasID, tlid traces.TLID, at time.Time) error
}

// Toplevels records what the editor deleted. It is safe for concurrent use.
type Toplevels struct {
	index toplevelIndex
	now   func() time.Time
}

// NewToplevels returns a Toplevels over ix (an *index.DB); now is the clock.
func NewToplevels(ix toplevelIndex, now func() time.Time) *Toplevels {
	return &Toplevels{index: ix, now: now}
}

// Forget records that the editor deleted toplevel tlid: GC stops keeping
// its latest traces, which then expire by the normal policy, until a trace
// that ran after the deletion makes it live again. A repeat is harmless.
// Backend faults wrap traces.ErrUnavailable.
func (t *Toplevels) Forget(ctx context.Context, c traces.CanvasID, tlid traces.TLID) error {
	if err := t.index.ForgetToplevel(ctx, c, tlid, t.now()); err != nil {
		return fmt.Errorf("forget toplevel %d: %w", tlid, err)
	}
	return nil
}
