package ttl

import (
	"fmt"
	"time"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// ChangeRequest is what `tracegw retention set` asks for. A zero field keeps
// the current value.
type ChangeRequest struct {
	// Retention is the new retention, whole days.
	Retention time.Duration
	// Keep is the new global keep-N.
	Keep int
	// KeepIfNone is the keep to record when Keep is zero and no policy is
	// recorded yet (the --keep-per-toplevel default).
	KeepIfNone int
}

// changePlan is what Change does, decided by planChange from the state it
// read. The steps always run in this order: record start, wait for the GC
// passes that read the old policy, mark every toplevel due (markDue), run
// renewal passes under the new policy until nothing it covers is due, set
// the bucket's rule (setRule), record done.
type changePlan struct {
	start   index.PolicyRecord // recorded before anything else
	write   bool               // start differs from the stored record
	markDue bool               // keep raised: ranks between the old and the new keep may be old
	setRule bool               // the rule must be set to start.RetentionDays
	done    index.PolicyRecord // recorded at the end, with times filled in by Change
	lines   []string           // what the plan does, for the operator
}

// planChange decides how to go from the recorded policy (rec, have) and the
// bucket's rule to want at now. It is pure; Change carries it out.
//
// Retention: a change records the new value and the previous one (the
// smaller of the recorded retention and the rule as read: the strictest
// that GCS may apply until the change settles). GC renews against the
// smaller of the two from that moment until SettleWindow after the rule
// changed, so lowering renews the keepers against the new, stricter
// threshold before the rule changes, and raising keeps renewing against
// the old one while GCS may still apply the old rule. Only one retention
// change may be in progress: another one, to a different value, is refused
// until the first settles (re-running the same one finishes it).
//
// Keep: lowering is immediate. Raising marks every toplevel due and runs a
// renewal pass under the new keep before the change is complete
// (KeepPending until then): ranks between the old and the new keep may be
// older than renew_after says. With no record, the keep is treated as
// raised, from nothing known.
func planChange(rec index.PolicyRecord, have bool, rule Rule, want ChangeRequest, now time.Time) (changePlan, error) {
	var p changePlan
	if !rule.Found {
		return p, fmt.Errorf("the bucket has no tracegw lifecycle rule: run `tracegw setup-bucket` first: %w", ErrDisagree)
	}
	if want.Retention != 0 && (want.Retention < Day || want.Retention%Day != 0) {
		return p, traces.Invalid("retention", "want whole days, at least 1d")
	}
	cur := rec
	if !have {
		cur = index.PolicyRecord{RetentionDays: rule.Days}
	}
	target := int64(want.Retention / Day)
	if target == 0 {
		target = cur.RetentionDays
	}
	keep := want.Keep
	if keep == 0 {
		keep = cur.Keep
	}
	if keep == 0 {
		keep = want.KeepIfNone
	}
	if keep < 1 || keep > MaxKeep {
		return p, traces.Invalid("keep-per-toplevel", "want 1 to %d", MaxKeep)
	}
	p.start = cur

	changing := have && retentionChanging(rec, now)
	switch {
	case changing && target != rec.RetentionDays:
		return p, fmt.Errorf("a retention change from %dd to %dd is in progress (%s): "+
			"finish it with `tracegw retention set --retention %dd`; another change can start once it has settled: %w",
			rec.PrevRetentionDays, rec.RetentionDays, settleText(rec), rec.RetentionDays, ErrDisagree)
	case changing && rec.RuleChangedAt.IsZero():
		p.setRule = true
		p.lines = append(p.lines, fmt.Sprintf("retention %dd → %dd: finish the change in progress", rec.PrevRetentionDays, target))
	case changing:
		p.lines = append(p.lines, fmt.Sprintf("retention %dd → %dd: the rule is changed; the change settles at %s",
			rec.PrevRetentionDays, target, rec.RetentionSettlesAt.Format(time.RFC3339)))
	case target != cur.RetentionDays || rule.Days != target:
		prev := min(cur.RetentionDays, rule.Days)
		p.start.RetentionDays, p.start.PrevRetentionDays = target, prev
		p.start.RuleChangedAt, p.start.RetentionSettlesAt = time.Time{}, time.Time{}
		p.setRule = true
		line := fmt.Sprintf("retention %dd → %dd: ", prev, target)
		if target < prev {
			line += fmt.Sprintf("renew keepers against %dd first, then change the rule", target)
		} else {
			line += fmt.Sprintf("change the rule; GC goes on renewing against %dd until %s after the change (GCS may apply the old rule meanwhile)",
				prev, FormatDuration(SettleWindow))
		}
		p.lines = append(p.lines, line)
	default:
		p.lines = append(p.lines, fmt.Sprintf("retention %dd: unchanged", target))
	}

	completed := 0 // the keep whose renewals are complete
	if have {
		completed = rec.Keep
		if rec.KeepPending {
			completed = rec.PrevKeep
		}
	}
	switch {
	case have && keep == rec.Keep && rec.KeepPending:
		p.markDue = true
		p.lines = append(p.lines, fmt.Sprintf("keep %d → %d: finish the raise in progress", rec.PrevKeep, keep))
	case have && keep == rec.Keep:
		p.lines = append(p.lines, fmt.Sprintf("keep %d: unchanged", keep))
	case keep > completed:
		p.start.Keep, p.start.PrevKeep, p.start.KeepChangedAt, p.start.KeepPending = keep, completed, now, true
		p.markDue = true
		from := "none recorded"
		if completed > 0 {
			from = fmt.Sprint(completed)
		}
		p.lines = append(p.lines, fmt.Sprintf("keep %s → %d: mark every toplevel due, renew under keep %d, then the raise is complete", from, keep, keep))
	default:
		p.start.Keep, p.start.PrevKeep, p.start.KeepChangedAt, p.start.KeepPending = keep, rec.Keep, now, false
		p.lines = append(p.lines, fmt.Sprintf("keep %d → %d: immediate (traces beyond rank %d expire by the rule)", rec.Keep, keep, keep))
	}
	p.write = !have || p.start != rec
	if p.write {
		p.start.UpdatedAt = now
	}
	p.done = p.start
	p.done.KeepPending = false
	return p, nil
}

// ruleChanged fills in the done record once the rule was set at now.
func (p *changePlan) ruleChanged(now time.Time) {
	p.done.RuleChangedAt, p.done.RetentionSettlesAt = now, now.Add(SettleWindow)
}
