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
	held  int              // keepers the index says are held (renewed all the same)
}

// decide sorts keepers into renew and fresh. A keeper is renewed when its
// customTime is strictly older than renewBefore, held or not: the index's
// held flag may be stale (a release whose last write failed), and the
// object's own hold, not the index, is what keeps a held trace; renewing a
// held object costs one PATCH every few days.
func decide(keepers []index.Keeper, renewBefore time.Time) plan {
	var p plan
	for _, k := range keepers {
		if k.Held {
			p.held++
		}
		if k.CustomTime.Before(renewBefore) {
			p.renew = append(p.renew, k)
		} else {
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
	outGone                   // its object is gone; its index rows were removed
	outFailed                 // renewal failed; retried next pass
)

// renewAfter is a toplevel's next renew_after after a pass: the oldest
// customTime among its keepers, but no later than ceiling (the pass's clock
// minus index.RenewSlack, so a fresh trace linked while the pass ran, which
// the pass could not see and which took no row lock, is never above it).
// ok is false if any keeper was found gone or failed: the toplevel then
// stays due, so the next pass reads its keepers again (after a keeper is
// gone, an older trace becomes one) and retries its failures.
func renewAfter(keepers []traces.TraceID, customTime map[traces.TraceID]time.Time, out map[traces.TraceID]outcome, ceiling time.Time) (t time.Time, ok bool) {
	t = ceiling
	for _, id := range keepers {
		switch out[id] {
		case outGone, outFailed:
			return time.Time{}, false
		}
		if ct := customTime[id]; ct.Before(t) {
			t = ct
		}
	}
	return t, true
}
