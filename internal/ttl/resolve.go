package ttl

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// ErrDisagree says that the configured policy, the bucket's lifecycle rule
// and the policy record do not agree: GC refuses to run a pass (serve
// --run-gc refuses to start) until they do. It wraps
// traces.ErrPreconditionFailed.
var ErrDisagree = fmt.Errorf("retention policy disagrees: %w", traces.ErrPreconditionFailed)

// SettleWindow is how long after a lifecycle rule change GCS may still
// apply the previous rule. GCS documents up to 24 h for a configuration
// change to take effect, the old configuration possibly acting meanwhile;
// the window doubles that, so a slow rollout or a clock that differs by
// minutes between the command and the GC replicas cannot matter. During
// the window GC renews against the stricter of the two retentions and
// accepts either value from its flags and the bucket.
const SettleWindow = 48 * time.Hour

// Keeps is the effective keep-N: how many of the latest traces of each live
// toplevel GC keeps. A canvas may have a keep of its own (PUT
// /v1/canvases/{id}/policy, index.DB.SetCanvasKeep); it is not looked up
// here but read by index.DB.Keepers (and the listings) in the same
// statement as the rows it judges, so a pass can never pair a toplevel's
// current rev with a canvas keep that a concurrent raise has replaced.
type Keeps struct {
	// Default is the global keep (the policy record's): the keep of every
	// canvas without its own.
	Default int
}

// Effective is the policy a GC pass applies, resolved from the configured
// Policy, the bucket's lifecycle rule and the policy record.
type Effective struct {
	// Retention is the strictest retention that GCS may apply now: GC's
	// threshold is Retention - Margin.
	Retention time.Duration
	// Keep is the keep-N.
	Keep Keeps
	// RuleDays is the bucket's lifecycle rule as read.
	RuleDays int64
	// Record is the policy record; on a fresh install (Fresh) the record to
	// store, from the configuration.
	Record index.PolicyRecord
	Fresh  bool
}

// Rule is the bucket's retention rule as read (RuleDays).
type Rule struct {
	Days  int64
	Found bool
}

// ReadRule reads the retention rule from a bucket's settings.
func ReadRule(s traces.BucketSettings) Rule {
	d, ok := RuleDays(s)
	return Rule{Days: d, Found: ok}
}

// retentionChanging reports whether r's previous retention may still apply
// at now: a recorded change whose rule is not yet changed, or within
// SettleWindow of the change.
func retentionChanging(r index.PolicyRecord, now time.Time) bool {
	return r.PrevRetentionDays > 0 && (r.RuleChangedAt.IsZero() || now.Before(r.RetentionSettlesAt))
}

// keepChanging reports whether r's previous keep is still accepted from
// flags at now (for SettleWindow after the change, so replicas can be
// reconfigured one by one).
func keepChanging(r index.PolicyRecord, now time.Time) bool {
	return r.PrevKeep > 0 && now.Before(r.KeepChangedAt.Add(SettleWindow))
}

// acceptedRetentions are the retention values (days) flags and the bucket
// may show at now, smallest first.
func acceptedRetentions(r index.PolicyRecord, now time.Time) []int64 {
	a := []int64{r.RetentionDays}
	if retentionChanging(r, now) && r.PrevRetentionDays != r.RetentionDays {
		a = append(a, r.PrevRetentionDays)
	}
	slices.Sort(a)
	return a
}

func acceptedKeeps(r index.PolicyRecord, now time.Time) []int {
	a := []int{r.Keep}
	if keepChanging(r, now) && r.PrevKeep != r.Keep {
		a = append(a, r.PrevKeep)
	}
	slices.Sort(a)
	return a
}

// Resolve decides the policy a GC pass runs under at now, or refuses
// (errors wrap ErrDisagree, every problem at once, each naming what to run).
// cfg is the configured policy (flags), rule the bucket's rule as read,
// rec/have the policy record. The rules:
//
//   - the bucket must have tracegw's rule (tracegw setup-bucket makes it);
//   - without a record (a fresh install), cfg's retention must equal the
//     rule, and cfg becomes the record (Fresh);
//   - with one, cfg's retention must be the recorded retention or, while a
//     change settles, the previous one; so must the rule, except while
//     `tracegw retention set` is about to change it (the change is recorded,
//     the rule not yet changed); cfg's keep must be the recorded keep or,
//     for SettleWindow after a change, the previous one;
//   - the effective retention is the smallest of the recorded one, the
//     previous one while it may apply, and the rule as read; the effective
//     keep is the recorded one; the resulting policy must pass Validate.
func Resolve(cfg Policy, rule Rule, rec index.PolicyRecord, have bool, now time.Time) (Effective, error) {
	days := cfg.RetentionDays()
	if !rule.Found {
		return Effective{}, fmt.Errorf("the bucket has no tracegw lifecycle rule (Delete at daysSinceCustomTime): run `tracegw setup-bucket`: %w", ErrDisagree)
	}
	if !have {
		if rule.Days != days {
			return Effective{}, fmt.Errorf("--retention %s disagrees with the bucket's lifecycle rule (%dd): "+
				"run with --retention %dd, or change the retention with `tracegw retention set --retention %s`: %w",
				FormatDuration(cfg.Retention), rule.Days, rule.Days, FormatDuration(cfg.Retention), ErrDisagree)
		}
		rec = index.PolicyRecord{RetentionDays: days, Keep: cfg.Keep, UpdatedAt: now}
		eff := Effective{Retention: cfg.Retention, Keep: Keeps{Default: cfg.Keep}, RuleDays: rule.Days, Record: rec, Fresh: true}
		return eff, cfg.Validate()
	}
	var errs []error
	ret := acceptedRetentions(rec, now)
	during := ""
	if len(ret) > 1 {
		during = fmt.Sprintf(", or %dd while the change from %dd settles, %s", rec.PrevRetentionDays, rec.PrevRetentionDays, settleText(rec))
	}
	if !slices.Contains(ret, days) {
		errs = append(errs, fmt.Errorf("--retention %s disagrees with the retention recorded by `tracegw retention set` (%dd%s): "+
			"run with --retention %dd, or change the retention with `tracegw retention set --retention %s`: %w",
			FormatDuration(cfg.Retention), rec.RetentionDays, during, rec.RetentionDays, FormatDuration(cfg.Retention), ErrDisagree))
	}
	ruleChanging := rec.PrevRetentionDays > 0 && rec.RuleChangedAt.IsZero()
	if !slices.Contains(ret, rule.Days) && !ruleChanging {
		errs = append(errs, fmt.Errorf("the bucket's lifecycle rule (%dd) disagrees with the retention recorded by `tracegw retention set` (%dd%s): "+
			"the rule was changed outside tracegw; make them agree with `tracegw retention set --retention N` (N the retention you want), "+
			"which changes the rule safely: %w", rule.Days, rec.RetentionDays, during, ErrDisagree))
	}
	keeps := acceptedKeeps(rec, now)
	if !slices.Contains(keeps, cfg.Keep) {
		also := ""
		if len(keeps) > 1 {
			also = fmt.Sprintf(", or %d until %s", rec.PrevKeep, rec.KeepChangedAt.Add(SettleWindow).Format(time.RFC3339))
		}
		errs = append(errs, fmt.Errorf("--keep-per-toplevel %d disagrees with the keep recorded by `tracegw retention set` (%d%s): "+
			"run with --keep-per-toplevel %d, or change it with `tracegw retention set --keep-per-toplevel %d`: %w",
			cfg.Keep, rec.Keep, also, rec.Keep, cfg.Keep, ErrDisagree))
	}
	if err := errors.Join(errs...); err != nil {
		return Effective{}, err
	}
	strictest := min(ret[0], rule.Days)
	eff := Effective{Retention: time.Duration(strictest) * Day, Keep: Keeps{Default: rec.Keep}, RuleDays: rule.Days, Record: rec}
	p := cfg
	p.Retention, p.Keep = eff.Retention, rec.Keep
	if err := p.Validate(); err != nil {
		return Effective{}, fmt.Errorf("the recorded policy is unsafe with this configuration: %w: %w", err, ErrDisagree)
	}
	return eff, nil
}

// settleText says until when a retention change settles.
func settleText(r index.PolicyRecord) string {
	if r.RuleChangedAt.IsZero() {
		return fmt.Sprintf("until the rule has been changed and %s have passed (`tracegw retention set --retention %dd` finishes the change)",
			FormatDuration(SettleWindow), r.RetentionDays)
	}
	return "until " + r.RetentionSettlesAt.Format(time.RFC3339)
}
