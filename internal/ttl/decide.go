package ttl

import (
	"time"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// plan is what a pass does with the keepers of one canvas.
type plan struct {
	renew []index.Keeper   // customTime older than RenewBefore: PATCH them
	fresh []traces.TraceID // young enough: nothing to do
	held  []traces.TraceID // the hold protects them: never renewed, never deleted
}

// decide sorts keepers into renew, fresh and held. A keeper is renewed when
// its customTime is strictly older than renewBefore; held wins over age.
func decide(keepers []index.Keeper, renewBefore time.Time) plan {
	var p plan
	for _, k := range keepers {
		switch {
		case k.Held:
			p.held = append(p.held, k.ID)
		case k.CustomTime.Before(renewBefore):
			p.renew = append(p.renew, k)
		default:
			p.fresh = append(p.fresh, k.ID)
		}
	}
	return p
}

// outcome is what became of one keeper in a pass.
type outcome int

const (
	outFresh   outcome = iota // already young enough (found so, or on re-read)
	outRenewed                // at least one of its objects was PATCHed
	outHeld                   // skipped: held
	outGone                   // its object is gone; its index rows were removed
	outFailed                 // renewal failed; retried next pass
)

// renewAfter is a toplevel's next renew_after after a pass: the oldest
// customTime among its non-held keepers, or now if it has none (all held, or
// no traces at all). ok is false if any keeper was found gone or failed: the
// toplevel then stays due, so the next pass reads its keepers again (after a
// keeper is gone, an older trace becomes one) and retries its failures.
func renewAfter(keepers []traces.TraceID, customTime map[traces.TraceID]time.Time, out map[traces.TraceID]outcome, now time.Time) (t time.Time, ok bool) {
	t = now
	for _, id := range keepers {
		switch out[id] {
		case outGone, outFailed:
			return time.Time{}, false
		case outHeld:
			continue
		}
		if ct := customTime[id]; ct.Before(t) {
			t = ct
		}
	}
	return t, true
}
