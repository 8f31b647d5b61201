package tracestore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// Import saves a trace that was recorded elsewhere (another store, an
// older system) as Save does — same checks, create-only, an identical
// retry answers Created false, another document under its ID wraps
// traces.ErrConflict — but the object's customTime is the trace's own
// timestamp (never later than now) instead of now, so the policy applies
// to it as if it had been saved when it ran: an old trace that is not a
// keeper expires at the lifecycle rule's next run, while every keeper of
// the toplevels it touches is renewed before Import returns. The trace
// must carry its ID (traceID; a retry must name the same trace).
//
// The index sees an old customTime as not fresh, so the toplevels are
// marked due; Import then renews their keepers at once through the
// Renewer, and a failure to renew wraps traces.ErrUnavailable (the keeper
// could otherwise expire before the GC's next pass): a retry, which finds
// the object and the rows, renews again.
func (s *Service) Import(ctx context.Context, c traces.CanvasID, t *traces.Trace) (Saved, error) {
	if t.ID.IsZero() {
		return Saved{}, traces.Invalid("traceID", "required when importing: an import keeps each trace's ID, so a retry names the same trace")
	}
	return s.save(ctx, c, t, Received{}, true)
}

// importedCustomTime is the customTime of an imported trace with timestamp
// ts: ts itself, never later than now (customTime can never be lowered, so
// a clock ahead of ours must not pin the object), in whole seconds as the
// storage client sends it.
func importedCustomTime(ts, now time.Time) time.Time {
	if ts.After(now) {
		ts = now
	}
	return ts.UTC().Truncate(time.Second)
}

// renewThreshold is a Renewer that tells the customTime before which GC
// renews keepers (*ttl.GC): an imported trace younger than that needs no
// renewal at once, which spares a keepers query per trace.
type renewThreshold interface {
	RenewBefore() time.Time
}

// renewImported renews the keepers of every toplevel an imported trace
// touches when its customTime ct is not fresh (the index marked them due,
// and the object may already be past retention, or past where GC would
// renew it); a fresh one is handled as Save handles it.
func (s *Service) renewImported(ctx context.Context, c traces.CanvasID, t *traces.Trace, ct, now time.Time, due []traces.TLID) error {
	if !ct.Before(now.Add(-index.FreshWindow)) {
		s.renewDue(ctx, c, due)
		return nil
	}
	if s.o.Renewer == nil {
		return nil // the GC's next pass renews the due toplevels
	}
	if th, ok := s.o.Renewer.(renewThreshold); ok && !ct.Before(th.RenewBefore()) {
		// Young enough that GC's passes renew it in time, as any keeper
		// of that age: the index marked its toplevels due.
		return nil
	}
	if err := s.o.Renewer.RenewToplevels(ctx, c, traces.Touched(t)); err != nil {
		if errors.Is(err, traces.ErrUnavailable) {
			return fmt.Errorf("renew keepers of imported trace %s: %w", t.ID, err)
		}
		return fmt.Errorf("renew keepers of imported trace %s: %w: %w", t.ID, traces.ErrUnavailable, err)
	}
	return nil
}
