package canvases

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// Bounds of a canvas's own keep-N.
const (
	MinKeep = 1
	MaxKeep = 1000
)

// DefaultRenewTimeout bounds the renewal a keep raise runs before it
// answers.
const DefaultRenewTimeout = 30 * time.Second

// policyIndex is what the canvas policy needs from the index.
type policyIndex interface {
	CanvasKeep(ctx context.Context, c traces.CanvasID) (int, error)
	SetCanvasKeep(ctx context.Context, c traces.CanvasID, keep, defaultKeep int, now time.Time) (index.KeepChange, error)
}

// PolicySource tells the server's keep-N (*ttl.GC implements it).
type PolicySource interface {
	CurrentPolicy(ctx context.Context) (retention time.Duration, keep int)
}

// Renewer renews the keepers of a canvas's toplevels; with tlids nil,
// those of every toplevel marked due (*ttl.GC implements it).
type Renewer interface {
	RenewToplevels(ctx context.Context, c traces.CanvasID, tlids []traces.TLID) error
}

// Policy is a canvas's retention settings.
type Policy struct {
	// Keep is the keep-N in effect: how many of the newest traces of each
	// live toplevel of the canvas are kept however old.
	Keep int
	// Own is true when the canvas has a keep of its own; false: the
	// server's default applies (and follows it when it changes).
	Own bool
	// RenewalPending is true when a raise's renewal of the traces it newly
	// keeps did not finish before the answer: they stay marked due, and
	// the next GC pass renews them.
	RenewalPending bool
}

// defaultKeep is the server's keep-N.
func (j *Service) defaultKeep(ctx context.Context) int {
	if j.o.Policy != nil {
		if _, keep := j.o.Policy.CurrentPolicy(ctx); keep > 0 {
			return keep
		}
	}
	return j.o.DefaultKeep
}

// Policy returns canvas c's retention settings (a canvas never configured
// has the default). Backend faults wrap traces.ErrUnavailable.
func (j *Service) Policy(ctx context.Context, c traces.CanvasID) (Policy, error) {
	own, err := j.index.CanvasKeep(ctx, c)
	if err != nil {
		return Policy{}, fmt.Errorf("policy of %s: %w", c, err)
	}
	if own > 0 {
		return Policy{Keep: own, Own: true}, nil
	}
	return Policy{Keep: j.defaultKeep(ctx)}, nil
}

// SetPolicy sets canvas c's own keep-N (keep 0: none, the server's default
// applies). keep must be MinKeep to MaxKeep (else a *traces.FieldError
// naming keepPerToplevel). Lowering is immediate: traces past the new
// keep expire by the lifecycle rule. Raising must lose no trace that
// becomes a keeper, however old: the index marks the canvas's live
// toplevels due in the same transaction as the change (rev bumped, so no
// GC pass that read the old keepers can undo it), and the newly kept
// traces are renewed before SetPolicy returns, within RenewTimeout and the
// caller's ctx. If that renewal is cut short or fails, the marks stay, the
// next GC pass completes it, and the answer says RenewalPending (the
// change itself is made). Repeating a raise also finishes what an earlier
// one left. A deleted canvas wraps traces.ErrNotFound; backend faults wrap
// traces.ErrUnavailable.
func (j *Service) SetPolicy(ctx context.Context, c traces.CanvasID, keep int) (Policy, error) {
	if keep != 0 && (keep < MinKeep || keep > MaxKeep) {
		return Policy{}, traces.Invalid("keepPerToplevel", "must be between %d and %d (or null for the server's default)", MinKeep, MaxKeep)
	}
	def := j.defaultKeep(ctx)
	ch, err := j.index.SetCanvasKeep(ctx, c, keep, def, j.now().UTC())
	if err != nil {
		return Policy{}, traces.PublicIf(fmt.Errorf("set policy of %s: %w", c, err), traces.ErrNotFound, "canvas %s was deleted", c)
	}
	p := Policy{Keep: keep, Own: keep > 0}
	if keep == 0 {
		p.Keep = def
	}
	j.log.Info("canvas keep changed", "canvas_id", c, "count", p.Keep, "raised", ch.Raised, "toplevels_due", ch.Marked)
	if j.o.Renewer == nil {
		p.RenewalPending = ch.Raised
		return p, nil
	}
	// Renew what is marked due (this raise's marks, or an earlier one's
	// that a cut-short renewal left) before answering.
	rctx, cancel := context.WithTimeout(ctx, j.o.RenewTimeout)
	defer cancel()
	if err := j.o.Renewer.RenewToplevels(rctx, c, nil); err != nil {
		p.RenewalPending = true
		level := j.log.Warn
		if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
			level = j.log.Info
		}
		level("keep raise: renewal left to the next gc pass", "canvas_id", c, "err", err)
	}
	return p, nil
}
