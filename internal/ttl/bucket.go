package ttl

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// bucketAdmin is what SetupBucket and CheckBucket need from Cloud Storage.
type bucketAdmin interface {
	Bucket() string
	BucketSettings(ctx context.Context) (traces.BucketSettings, error)
	CreateBucket(ctx context.Context, project string, s traces.BucketSettings) error
	UpdateBucket(ctx context.Context, u traces.BucketUpdate, ifMetageneration int64) (traces.BucketSettings, error)
	Notifications(ctx context.Context) ([]traces.NotificationConfig, error)
	AddNotification(ctx context.Context, n traces.NotificationConfig) (traces.NotificationConfig, error)
}

// The notification config tracegw wants: deletions only (every customTime
// renewal would otherwise publish a METADATA_UPDATE), with the object's
// JSON resource as payload.
const (
	EventObjectDelete = "OBJECT_DELETE"
	PayloadJSON       = "JSON_API_V1"
)

// BucketOptions says where the bucket and its notifications live.
type BucketOptions struct {
	// Project creates the bucket if it does not exist; without it a missing
	// bucket is an error.
	Project string
	// Topic receives the deletion notifications: projects/P/topics/T. Empty
	// skips the notification config (with a warning).
	Topic string
}

// BucketReport says what SetupBucket changed and what it left alone.
type BucketReport struct {
	// Changes made, in order; in a dry run, the changes it would make.
	Changes []string
	// Warnings about what is wrong or suspicious but not tracegw's to
	// change: other lifecycle rules, other notification configs on the topic.
	Warnings []string
}

// SetupBucket creates or fixes the bucket of b for policy p, idempotently:
// the bucket exists; its lifecycle has exactly one tracegw rule (Delete at
// daysSinceCustomTime = retention days; redundant longer tracegw-shaped
// rules are removed); versioning is off; soft delete is off; and one
// notification config sends OBJECT_DELETE with a JSON_API_V1 payload to
// o.Topic (listed before added: adding is not idempotent). Settings go in
// one PATCH guarded by the metageneration read. Other lifecycle rules and
// notification configs are reported, never removed. dryRun changes nothing
// and reports what it would do. Errors wrap traces.ErrNotFound when the
// bucket is missing and o.Project is empty, and ErrDisagree when the bucket
// has a tracegw rule with another retention than p's: SetupBucket creates
// the rule but never changes the retention (Change does, safely).
func SetupBucket(ctx context.Context, b bucketAdmin, p Policy, o BucketOptions, dryRun bool) (BucketReport, error) {
	var r BucketReport
	did := func(s string) {
		if dryRun {
			s = "would " + s
		}
		r.Changes = append(r.Changes, s)
	}
	cur, err := b.BucketSettings(ctx)
	switch {
	case errors.Is(err, traces.ErrNotFound):
		if o.Project == "" {
			return r, fmt.Errorf("setup bucket %s: it does not exist; give a project to create it: %w", b.Bucket(), err)
		}
		want := traces.BucketSettings{Lifecycle: []traces.LifecycleRule{p.LifecycleRule()}}
		did(fmt.Sprintf("create bucket %s in project %s with %s, versioning off, soft delete off",
			b.Bucket(), o.Project, describeRule(p.LifecycleRule())))
		if !dryRun {
			if err := b.CreateBucket(ctx, o.Project, want); err != nil {
				return r, fmt.Errorf("setup bucket %s: %w", b.Bucket(), err)
			}
		}
	case err != nil:
		return r, fmt.Errorf("setup bucket %s: %w", b.Bucket(), err)
	default:
		if err := keepsRetention(cur, p); err != nil {
			return r, fmt.Errorf("setup bucket %s: %w", b.Bucket(), err)
		}
		u, changes, warnings := planBucket(cur, p)
		r.Warnings = append(r.Warnings, warnings...)
		for _, c := range changes {
			did(c)
		}
		if len(changes) > 0 && !dryRun {
			if _, err := b.UpdateBucket(ctx, u, cur.Metageneration); err != nil {
				return r, fmt.Errorf("setup bucket %s: %w", b.Bucket(), err)
			}
		}
	}
	if o.Topic == "" {
		r.Warnings = append(r.Warnings, "no notification topic given: deleted objects' index rows are then only removed on read or by reconcile")
		return r, nil
	}
	var notes []traces.NotificationConfig
	if cur.Metageneration != 0 { // an existing bucket; a new one has none
		if notes, err = b.Notifications(ctx); err != nil {
			return r, fmt.Errorf("setup bucket %s: %w", b.Bucket(), err)
		}
	}
	add, warnings := planNotifications(notes, o.Topic)
	r.Warnings = append(r.Warnings, warnings...)
	if add {
		did(fmt.Sprintf("add notification config: %s events to %s, payload %s", EventObjectDelete, o.Topic, PayloadJSON))
		if !dryRun {
			if _, err := b.AddNotification(ctx, wantNotification(o.Topic)); err != nil {
				return r, fmt.Errorf("setup bucket %s: %w", b.Bucket(), err)
			}
		}
	}
	return r, nil
}

// CheckBucket reports, without changing anything, how the bucket differs
// from what SetupBucket would make it (for serve to warn at start): each
// difference and each warning is one line. topic may be empty to skip the
// notification check. Errors wrap traces.ErrNotFound if the bucket is
// missing.
func CheckBucket(ctx context.Context, b bucketAdmin, p Policy, topic string) ([]string, error) {
	cur, err := b.BucketSettings(ctx)
	if err != nil {
		return nil, fmt.Errorf("check bucket %s: %w", b.Bucket(), err)
	}
	var drift []string
	if have, ok := RuleDays(cur); ok && have != p.RetentionDays() {
		// Normal while a `tracegw retention set` change between the two
		// settles (GC checks that against the policy record); a problem
		// otherwise.
		drift = append(drift, fmt.Sprintf("bucket %s: its lifecycle rule deletes after %dd but --retention is %s: "+
			"GC refuses this unless a `tracegw retention set` change between the two is settling (see `tracegw retention show`)",
			b.Bucket(), have, FormatDuration(p.Retention)))
		p.Retention = time.Duration(have) * Day // report the rest against the rule it has
	}
	_, changes, warnings := planBucket(cur, p)
	for _, c := range changes {
		drift = append(drift, "bucket "+b.Bucket()+" needs: "+c+" (run tracegw setup-bucket)")
	}
	drift = append(drift, warnings...)
	if topic != "" {
		notes, err := b.Notifications(ctx)
		if err != nil {
			return drift, fmt.Errorf("check bucket %s: %w", b.Bucket(), err)
		}
		add, warnings := planNotifications(notes, topic)
		if add {
			drift = append(drift, fmt.Sprintf("bucket %s has no %s notification config to %s (run tracegw setup-bucket)", b.Bucket(), EventObjectDelete, topic))
		}
		drift = append(drift, warnings...)
	}
	return drift, nil
}

// RuleDays reads tracegw's retention from a bucket's lifecycle rules: the
// smallest daysSinceCustomTime among rules of tracegw's shape (Delete,
// daysSinceCustomTime and no other condition). Rules OR together, so the
// shortest one decides. found is false if there is none.
func RuleDays(s traces.BucketSettings) (days int64, found bool) {
	for _, r := range s.Lifecycle {
		if isOurs(r) && (!found || r.DaysSinceCustomTime < days) {
			days, found = r.DaysSinceCustomTime, true
		}
	}
	return days, found
}

// keepsRetention refuses a policy whose retention differs from the rule an
// existing bucket has: setup-bucket creates the rule, and only Change
// (tracegw retention set) changes it, because GCS may go on applying the
// old rule for 24 h after a change. The error wraps ErrDisagree.
func keepsRetention(cur traces.BucketSettings, p Policy) error {
	have, ok := RuleDays(cur)
	if !ok || have == p.RetentionDays() {
		return nil
	}
	return fmt.Errorf("its lifecycle rule deletes after %dd but --retention is %s; setup-bucket never changes the retention "+
		"of a bucket (GCS may apply the old rule for 24 h after a change): change it with `tracegw retention set --retention %s`, "+
		"or run with --retention %dd: %w", have, FormatDuration(p.Retention), FormatDuration(p.Retention), have, ErrDisagree)
}

// setRule makes days the bucket's retention: every rule of tracegw's shape
// is replaced by one Delete rule at daysSinceCustomTime = days, in one PATCH
// guarded by the metageneration read. changed is false if the bucket had
// exactly that. Only Change calls it.
func setRule(ctx context.Context, b bucketAdmin, days int64) (from string, changed bool, err error) {
	cur, err := b.BucketSettings(ctx)
	if err != nil {
		return "", false, fmt.Errorf("set lifecycle rule of %s: %w", b.Bucket(), err)
	}
	want := traces.LifecycleRule{Action: "Delete", DaysSinceCustomTime: days}
	var u traces.BucketUpdate
	var old []string
	for i, r := range cur.Lifecycle {
		if isOurs(r) {
			u.DropRules = append(u.DropRules, i)
			old = append(old, describeRule(r))
		}
	}
	from = strings.Join(old, ", ")
	if len(u.DropRules) == 1 && cur.Lifecycle[u.DropRules[0]].DaysSinceCustomTime == days {
		return from, false, nil
	}
	u.AddRules = []traces.LifecycleRule{want}
	if _, err := b.UpdateBucket(ctx, u, cur.Metageneration); err != nil {
		return from, false, fmt.Errorf("set lifecycle rule of %s: %w", b.Bucket(), err)
	}
	return from, true, nil
}

// planBucket compares an existing bucket with what policy p needs.
func planBucket(cur traces.BucketSettings, p Policy) (u traces.BucketUpdate, changes, warnings []string) {
	want := p.LifecycleRule()
	have := false
	for i, r := range cur.Lifecycle {
		switch {
		case isOurs(r) && r.DaysSinceCustomTime == want.DaysSinceCustomTime && !have:
			have = true
		case isOurs(r):
			// A duplicate or a longer rule (keepsRetention refused a
			// shorter one): rules OR together, so it never decides.
			u.DropRules = append(u.DropRules, i)
			changes = append(changes, "remove lifecycle rule "+describeRule(r))
		default:
			warnings = append(warnings, "lifecycle rule "+describeRule(r)+" is not tracegw's and was left alone"+
				map[bool]string{true: ": it may delete traces GC keeps", false: ""}[r.Action == "Delete"])
		}
	}
	if !have {
		u.AddRules = []traces.LifecycleRule{want}
		changes = append(changes, "add lifecycle rule "+describeRule(want))
	}
	if cur.Versioning {
		off := false
		u.Versioning = &off
		changes = append(changes, "turn versioning off (deletes would leave billed noncurrent versions)")
	}
	if cur.SoftDelete != 0 {
		var zero time.Duration
		u.SoftDelete = &zero
		changes = append(changes, fmt.Sprintf("turn soft delete off (was %s: every expired trace would be billed that long)", FormatDuration(cur.SoftDelete)))
	}
	return u, changes, warnings
}

// isOurs reports whether r has the shape of tracegw's rule.
func isOurs(r traces.LifecycleRule) bool {
	return r.Action == "Delete" && r.StorageClass == "" && r.DaysSinceCustomTime > 0 && len(r.Other) == 0
}

func describeRule(r traces.LifecycleRule) string {
	conds := slices.Clone(r.Other)
	if r.DaysSinceCustomTime > 0 {
		conds = append([]string{fmt.Sprintf("daysSinceCustomTime=%d", r.DaysSinceCustomTime)}, conds...)
	}
	action := r.Action
	if r.StorageClass != "" {
		action += "(" + r.StorageClass + ")"
	}
	return "{" + action + " if " + strings.Join(conds, " and ") + "}"
}

func wantNotification(topic string) traces.NotificationConfig {
	return traces.NotificationConfig{Topic: topic, EventTypes: []string{EventObjectDelete}, PayloadFormat: PayloadJSON}
}

// planNotifications reports whether tracegw's config must be added, and
// warns about other configs publishing to the same topic.
func planNotifications(notes []traces.NotificationConfig, topic string) (add bool, warnings []string) {
	add = true
	for _, n := range notes {
		if n.Topic != topic {
			continue
		}
		if slices.Equal(n.EventTypes, []string{EventObjectDelete}) && n.PayloadFormat == PayloadJSON && n.ObjectNamePrefix == "" && add {
			add = false
			continue
		}
		warnings = append(warnings, fmt.Sprintf("notification config %s also publishes to %s (events %v, payload %s, prefix %q): left alone",
			n.ID, topic, n.EventTypes, n.PayloadFormat, n.ObjectNamePrefix))
	}
	return add, warnings
}
