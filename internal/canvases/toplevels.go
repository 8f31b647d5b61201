package canvases

import (
	"context"
	"fmt"

	"github.com/tracegw/tracegw/internal/traces"
)

// ForgetToplevel records that the editor deleted toplevel tlid: GC stops
// keeping its latest traces, which then expire by the normal policy, until
// a trace that ran after the deletion makes it live again. A repeat is
// harmless. Backend faults wrap traces.ErrUnavailable.
func (j *Service) ForgetToplevel(ctx context.Context, c traces.CanvasID, tlid traces.TLID) error {
	if err := j.index.ForgetToplevel(ctx, c, tlid, j.now()); err != nil {
		return fmt.Errorf("forget toplevel %d: %w", tlid, err)
	}
	return nil
}
