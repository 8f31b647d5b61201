package ttl

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/tracegw/tracegw/internal/index"
)

// Status is what `tracegw status` reports about retention, read from the
// index (policy record, GC pass history, notification progress, table
// sizes) and the bucket (its lifecycle rule) by ReadStatus.
type Status struct {
	// Now is the moment the report is about (the emulator's clock against
	// tracegw dev).
	Now time.Time
	// Rule is the bucket's rule as read; RuleErr why it could not be read.
	Rule    Rule
	RuleErr error
	// Record is the policy record (HaveRecord false on a fresh install).
	Record     index.PolicyRecord
	HaveRecord bool
	// Last is the newest GC pass, LastOK the newest fully successful one.
	Last, LastOK         index.PassRecord
	HaveLast, HaveLastOK bool
	// Notify is the notification consumer's progress per bucket.
	Notify []index.NotifyProgress
	// Tables is the size of each table of the index.
	Tables []index.TableSize
}

// ReadStatus reads the status at now. The bucket is read once; a bucket
// that cannot be read is reported in Status.RuleErr, not as an error.
// Errors wrap traces.ErrUnavailable when the database cannot be reached.
func ReadStatus(ctx context.Context, db *index.DB, b Bucket, now time.Time) (Status, error) {
	s := Status{Now: now}
	if set, err := b.BucketSettings(ctx); err != nil {
		s.RuleErr = err
	} else {
		s.Rule = ReadRule(set)
	}
	var err error
	if s.Record, s.HaveRecord, err = db.Policy(ctx); err != nil {
		return s, err
	}
	if s.Last, s.HaveLast, s.LastOK, s.HaveLastOK, err = db.PassHistory(ctx); err != nil {
		return s, err
	}
	if s.Notify, err = db.NotifyProgresses(ctx); err != nil {
		return s, err
	}
	if s.Tables, err = db.TableSizes(ctx); err != nil {
		return s, err
	}
	return s, nil
}

// StatusOptions are the thresholds of the status report.
type StatusOptions struct {
	// Margin and Interval are the GC's; the newest pass record's values win
	// (they are what GC ran with), these are the fallback.
	Margin, Interval time.Duration
	// MaxNotifyLag is the notification lag above which the report warns.
	MaxNotifyLag time.Duration
}

// schedule is the margin and interval GC runs with.
func (s Status) schedule(o StatusOptions) (margin, interval time.Duration) {
	margin, interval = o.Margin, o.Interval
	if s.HaveLast && s.Last.Interval > 0 {
		margin, interval = s.Last.Margin, s.Last.Interval
	}
	return margin, interval
}

// Warnings are the problems the status shows, each a sentence saying what
// to do. None means healthy. Pure: the tests feed it statuses.
func (s Status) Warnings(o StatusOptions) []string {
	var w []string
	warn := func(format string, args ...any) { w = append(w, fmt.Sprintf(format, args...)) }
	margin, interval := s.schedule(o)
	switch {
	case s.RuleErr != nil:
		warn("the bucket's lifecycle rule cannot be read: %v", s.RuleErr)
	case !s.Rule.Found:
		warn("the bucket has no tracegw lifecycle rule: nothing expires; run `tracegw setup-bucket`")
	case s.HaveRecord && !ruleAccepted(s.Record, s.Rule, s.Now):
		warn("the bucket's lifecycle rule (%dd) disagrees with the recorded retention (%dd): GC refuses to run; "+
			"make them agree with `tracegw retention set --retention N`", s.Rule.Days, s.Record.RetentionDays)
	}
	if s.HaveRecord && s.Record.PrevRetentionDays > 0 && s.Record.RuleChangedAt.IsZero() {
		warn("the retention change to %dd is recorded but the bucket's rule is not changed yet: finish it with `tracegw retention set --retention %dd`",
			s.Record.RetentionDays, s.Record.RetentionDays)
	}
	if s.HaveRecord && s.Record.KeepPending {
		warn("the keep raise to %d has not completed its renewal pass: traces of ranks %d to %d may expire; finish it with `tracegw retention set --keep-per-toplevel %d`",
			s.Record.Keep, s.Record.PrevKeep+1, s.Record.Keep, s.Record.Keep)
	}
	if !s.HaveLast {
		warn("no GC pass recorded: is GC running (`tracegw serve --run-gc` or `tracegw gc`)? Keepers expire with their customTime without it")
		return append(w, s.notifyWarnings(o)...)
	}
	if s.Last.Outcome != index.PassOK {
		warn("the last GC pass (%s, replica %s) %s: %s", s.Last.EndedAt.Format(time.RFC3339), s.Last.Replica,
			outcomeText(s.Last.Outcome), s.Last.Error)
	}
	if idle := s.Now.Sub(s.Last.EndedAt); interval > 0 && idle > 2*interval {
		warn("no GC pass for %s (the interval is %s): is GC running?", roundDuration(idle), FormatDuration(interval))
	}
	if d := s.Last.EndedAt.Sub(s.Last.StartedAt); interval > 0 && d > time.Duration(float64(interval)*OverrunFraction) {
		warn("the last GC pass took %s, more than %.0f%% of the %s interval (its deadline): GC falls behind; raise --gc-interval (and --renew-margin) or find what is slow",
			roundDuration(d), OverrunFraction*100, FormatDuration(interval))
	}
	switch left := s.LastOK.KeeperDeadline.Sub(s.Now); {
	case !s.HaveLastOK:
		warn("no fully successful GC pass recorded: keepers are not known to be safe")
	case left <= 0:
		warn("the keeper deadline passed %s ago (%s): keepers may be being deleted now; the last fully successful GC pass started at %s",
			roundDuration(-left), s.LastOK.KeeperDeadline.Format(time.RFC3339), s.LastOK.StartedAt.Format(time.RFC3339))
	case margin > 0 && left < margin/2:
		warn("the keeper deadline is in %s (%s), less than half the renew margin (%s): GC has not fully succeeded since %s; "+
			"keepers start expiring then if it does not", roundDuration(left), s.LastOK.KeeperDeadline.Format(time.RFC3339),
			FormatDuration(margin), s.LastOK.StartedAt.Format(time.RFC3339))
	}
	return append(w, s.notifyWarnings(o)...)
}

func (s Status) notifyWarnings(o StatusOptions) []string {
	var w []string
	for _, n := range s.Notify {
		if o.MaxNotifyLag > 0 && n.Lag > o.MaxNotifyLag {
			w = append(w, fmt.Sprintf("notifications of bucket %s lag %s behind (more than %s): deleted traces stay in the index meanwhile; check the consumer (`tracegw notify` or serve --run-notify) and its subscription",
				n.Bucket, roundDuration(n.Lag), FormatDuration(o.MaxNotifyLag)))
		}
	}
	return w
}

func ruleAccepted(r index.PolicyRecord, rule Rule, now time.Time) bool {
	if r.PrevRetentionDays > 0 && r.RuleChangedAt.IsZero() {
		return true // retention set is about to change it
	}
	for _, d := range acceptedRetentions(r, now) {
		if d == rule.Days {
			return true
		}
	}
	return false
}

func outcomeText(outcome string) string {
	switch outcome {
	case index.PassFailed:
		return "failed"
	case index.PassCutShort:
		return "was cut short at its deadline"
	case index.PassRefused:
		return "was refused"
	}
	return outcome
}

// roundDuration rounds for reading: seconds under an hour, minutes above.
func roundDuration(d time.Duration) string {
	if d >= time.Hour {
		d = d.Round(time.Minute)
	} else {
		d = d.Round(time.Second)
	}
	return FormatDuration(d)
}

// when renders t relative to now: "2026-11-20T12:00:00Z (3h0m0s ago)".
func when(t, now time.Time) string {
	if t.IsZero() {
		return "never"
	}
	if d := now.Sub(t); d >= 0 {
		return fmt.Sprintf("%s (%s ago)", t.Format(time.RFC3339), roundDuration(d))
	}
	return fmt.Sprintf("%s (in %s)", t.Format(time.RFC3339), roundDuration(t.Sub(now)))
}

// WriteRetention writes the retention part of the report: the rule, the
// recorded policy and any change in progress, with when it completes.
func (s Status) WriteRetention(w io.Writer) {
	fmt.Fprintln(w, "retention:")
	switch {
	case s.RuleErr != nil:
		fmt.Fprintf(w, "  bucket rule       cannot be read: %v\n", s.RuleErr)
	case !s.Rule.Found:
		fmt.Fprintln(w, "  bucket rule       none (run `tracegw setup-bucket`)")
	default:
		fmt.Fprintf(w, "  bucket rule       Delete at daysSinceCustomTime >= %d (%dd)\n", s.Rule.Days, s.Rule.Days)
	}
	if !s.HaveRecord {
		fmt.Fprintln(w, "  recorded          nothing yet (the first GC pass records its flags)")
		return
	}
	r := s.Record
	fmt.Fprintf(w, "  recorded          retention %dd, keep %d per toplevel (updated %s)\n", r.RetentionDays, r.Keep, when(r.UpdatedAt, s.Now))
	switch {
	case r.PrevRetentionDays > 0 && r.RuleChangedAt.IsZero():
		fmt.Fprintf(w, "  retention change  %dd → %dd in progress: the rule is not changed yet; GC renews against %dd (re-run `tracegw retention set --retention %dd`)\n",
			r.PrevRetentionDays, r.RetentionDays, min(r.PrevRetentionDays, r.RetentionDays), r.RetentionDays)
	case retentionChanging(r, s.Now) && r.PrevRetentionDays < r.RetentionDays:
		fmt.Fprintf(w, "  retention change  %dd → %dd in progress: GCS may apply the old rule until %s; GC renews against %dd until then and %dd after\n",
			r.PrevRetentionDays, r.RetentionDays, when(r.RetentionSettlesAt, s.Now), r.PrevRetentionDays, r.RetentionDays)
	case retentionChanging(r, s.Now):
		fmt.Fprintf(w, "  retention change  %dd → %dd complete: GC renews against %dd; --retention %dd is accepted until %s\n",
			r.PrevRetentionDays, r.RetentionDays, r.RetentionDays, r.PrevRetentionDays, when(r.RetentionSettlesAt, s.Now))
	case r.PrevRetentionDays > 0:
		fmt.Fprintf(w, "  retention change  %dd → %dd complete (settled %s)\n", r.PrevRetentionDays, r.RetentionDays, when(r.RetentionSettlesAt, s.Now))
	}
	switch {
	case r.KeepPending:
		fmt.Fprintf(w, "  keep change       %d → %d in progress: the renewal pass under keep %d has not completed (re-run `tracegw retention set --keep-per-toplevel %d`)\n",
			r.PrevKeep, r.Keep, r.Keep, r.Keep)
	case keepChanging(r, s.Now):
		fmt.Fprintf(w, "  keep change       %d → %d complete; --keep-per-toplevel %d is accepted until %s\n",
			r.PrevKeep, r.Keep, r.PrevKeep, when(r.KeepChangedAt.Add(SettleWindow), s.Now))
	}
}

// Write writes the whole report and its warnings (each line starting
// "WARN "), and returns how many warnings it wrote.
func (s Status) Write(w io.Writer, o StatusOptions) int {
	margin, interval := s.schedule(o)
	fmt.Fprintln(w, "gc:")
	pass := func(p index.PassRecord) string {
		return fmt.Sprintf("%s on %s: %s, retention %dd, keep %d, %d canvases (%d skipped), renewed %d, failed %d, took %s",
			when(p.EndedAt, s.Now), p.Replica, p.Outcome, p.RetentionDays, p.Keep, p.Canvases, p.Skipped, p.Renewed, p.Failed,
			roundDuration(p.EndedAt.Sub(p.StartedAt)))
	}
	if s.HaveLast {
		fmt.Fprintf(w, "  last pass         %s\n", pass(s.Last))
	} else {
		fmt.Fprintln(w, "  last pass         none recorded")
	}
	if s.HaveLastOK {
		fmt.Fprintf(w, "  last successful   %s\n", pass(s.LastOK))
		fmt.Fprintf(w, "  keeper deadline   %s: no keeper can expire before it, even if GC stopped now\n", when(s.LastOK.KeeperDeadline, s.Now))
	} else {
		fmt.Fprintln(w, "  last successful   none recorded")
	}
	fmt.Fprintf(w, "  schedule          every %s, renew margin %s\n", FormatDuration(interval), FormatDuration(margin))
	s.WriteRetention(w)
	fmt.Fprintln(w, "notifications:")
	if len(s.Notify) == 0 {
		fmt.Fprintln(w, "  none applied yet")
	}
	for _, n := range s.Notify {
		fmt.Fprintf(w, "  bucket %s: newest deletion applied happened %s, lag %s (recorded %s)\n",
			n.Bucket, when(n.LastEventTime, s.Now), roundDuration(n.Lag), when(n.RecordedAt, s.Now))
	}
	fmt.Fprintln(w, "index:")
	fmt.Fprintf(w, "  %-28s %14s %12s\n", "table", "rows (est.)", "size")
	unknown := false
	for _, t := range s.Tables {
		rows := "?"
		if t.Rows >= 0 {
			rows = fmt.Sprint(t.Rows)
		} else {
			unknown = true
		}
		fmt.Fprintf(w, "  %-28s %14s %12s\n", t.Table, rows, bytesText(t.Bytes))
	}
	if unknown {
		fmt.Fprintln(w, "  (?: not analyzed yet, no estimate)")
	}
	warnings := s.Warnings(o)
	for _, wn := range warnings {
		fmt.Fprintf(w, "WARN %s\n", wn)
	}
	return len(warnings)
}

func bytesText(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
