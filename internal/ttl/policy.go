package ttl

import (
	"errors"
	"time"

	"github.com/tracegw/tracegw/internal/days"
	"github.com/tracegw/tracegw/internal/traces"
)

// Day is the unit of the lifecycle rule's daysSinceCustomTime.
const Day = days.Day

// Policy is the retention policy and the GC schedule that enforces it, as
// configured by flags. A managed GC (Options.Bucket) checks Retention and
// Keep against the bucket's lifecycle rule and the policy record each pass
// and applies the effective values (Resolve); Margin and Interval are its
// own.
//
// The safety arithmetic. GC renews a keeper once its customTime is older
// than Retention - Margin (RenewBefore), so a keeper that a pass found not
// yet due at t0 has customTime >= t0 - (Retention - Margin), and the rule
// can delete it from t0 + Margin on, never before. In the worst case:
//
//   - the next pass starts at most one Interval after t0 (the ticker; a
//     pass never runs longer than its deadline of one Interval) and fails,
//     or is cut short at that deadline;
//   - the pass after it starts at most one Interval later still, and
//     finishes within its deadline, one Interval: the keeper is renewed by
//     t0 + 3*Interval;
//   - the rule counts whole days since customTime and GCS may act any time
//     once it matches: one Day of slack.
//
// Hence Margin >= 3*Interval + 1d (Validate), and Margin < Retention. The
// keeper deadline GC exports (start of the last successful pass + Margin)
// is the same bound seen from the other side: the earliest moment a keeper
// could be deleted if GC stopped now.
type Policy struct {
	// Retention is how long an object lives after its customTime: the
	// lifecycle rule's daysSinceCustomTime, so whole days (--retention).
	Retention time.Duration
	// Margin is how long before the rule could take a keeper that GC renews
	// it (--renew-margin); see the arithmetic above.
	Margin time.Duration
	// Interval is the time between GC passes and each pass's deadline
	// (--gc-interval).
	Interval time.Duration
	// Keep is how many of the latest traces of each live toplevel are kept
	// however old (--keep-per-toplevel).
	Keep int
}

// DefaultPolicy is the policy docs/design.md promises by default: 7 days,
// renewed 2 days before expiry by an hourly GC, keeping the latest 10
// traces of each toplevel.
func DefaultPolicy() Policy {
	return Policy{Retention: 7 * Day, Margin: 2 * Day, Interval: time.Hour, Keep: 10}
}

// MaxKeep bounds Keep: each due toplevel costs Keep index rows per pass.
const MaxKeep = 100

// MinMargin is the smallest safe Margin for a GC interval: 3*interval + 1d
// (see Policy).
func MinMargin(interval time.Duration) time.Duration { return 3*interval + Day }

// The names of Policy's fields in its errors (traces.FieldError.Field, and
// inside a reason where one field refers to another); a command maps them
// to its flags.
const (
	FieldRetention = "retention"
	FieldMargin    = "renewMargin"
	FieldInterval  = "gcInterval"
	FieldKeep      = "keepPerToplevel"
)

// Validate reports every way p is unsafe or invalid at once (errors.Join),
// each a *traces.FieldError naming the field to change (FieldRetention,
// …). The safety rule: margin >= 3*interval + 1d (MinMargin), and margin
// < retention.
func (p Policy) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, traces.Invalid(field, format, args...))
	}
	if p.Retention < Day || p.Retention%Day != 0 {
		bad(FieldRetention, "%s: want whole days, at least 1d (the lifecycle rule counts days)", FormatDuration(p.Retention))
	}
	if p.Interval <= 0 {
		bad(FieldInterval, "%s: want a positive duration", FormatDuration(p.Interval))
	}
	if need := MinMargin(p.Interval); p.Interval > 0 && p.Margin < need {
		bad(FieldMargin, "%s is unsafe: it must be at least 3 x %s + 1d = %s "+
			"(a failed pass, the next one running to its deadline of one interval, and a day for the rule's day granularity); "+
			"raise %s or lower %s",
			FormatDuration(p.Margin), FieldInterval, FormatDuration(need), FieldMargin, FieldInterval)
	}
	if p.Margin >= p.Retention && p.Retention >= Day {
		bad(FieldMargin, "%s must be less than %s %s (else every keeper is renewed on every pass); raise %s or lower %s",
			FormatDuration(p.Margin), FieldRetention, FormatDuration(p.Retention), FieldRetention, FieldMargin)
	}
	if p.Keep < 1 || p.Keep > MaxKeep {
		bad(FieldKeep, "%d: want 1 to %d", p.Keep, MaxKeep)
	}
	return errors.Join(errs...)
}

// RenewBefore is the customTime below which GC renews a keeper at now: the
// keeper is within Margin of the lifecycle rule matching it.
func (p Policy) RenewBefore(now time.Time) time.Time {
	return now.Add(-(p.Retention - p.Margin))
}

// RetentionDays is Retention in the lifecycle rule's unit.
func (p Policy) RetentionDays() int64 { return int64(p.Retention / Day) }

// traces.LifecycleRule is the bucket's one lifecycle rule: Delete an object once
// daysSinceCustomTime reaches the retention in days.
func (p Policy) LifecycleRule() traces.LifecycleRule {
	return traces.LifecycleRule{Action: "Delete", DaysSinceCustomTime: p.RetentionDays()}
}

// FormatDuration prints whole days as "7d" and anything else as
// time.Duration does: days.Format, the form every duration flag parses.
func FormatDuration(d time.Duration) string { return days.Format(d) }
