package objstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/tracegw/tracegw/internal/traces"
)

// traces.BucketSettings reads the bucket's settings. A missing bucket wraps
// traces.ErrNotFound.
func (g *GCS) BucketSettings(ctx context.Context) (traces.BucketSettings, error) {
	a, err := g.bucket.Attrs(ctx)
	if err != nil {
		return traces.BucketSettings{}, translateBucket("bucket "+g.name, err)
	}
	return settings(a), nil
}

func settings(a *storage.BucketAttrs) traces.BucketSettings {
	s := traces.BucketSettings{Metageneration: a.MetaGeneration, Versioning: a.VersioningEnabled}
	if a.SoftDeletePolicy != nil {
		s.SoftDelete = a.SoftDeletePolicy.RetentionDuration
	}
	for _, r := range a.Lifecycle.Rules {
		s.Lifecycle = append(s.Lifecycle, fromRule(r))
	}
	return s
}

// CreateBucket creates the bucket in project with settings s (its
// Metageneration is ignored). An existing bucket wraps traces.ErrConflict.
func (g *GCS) CreateBucket(ctx context.Context, project string, s traces.BucketSettings) error {
	attrs := &storage.BucketAttrs{
		VersioningEnabled: s.Versioning,
		SoftDeletePolicy:  &storage.SoftDeletePolicy{RetentionDuration: s.SoftDelete},
	}
	for _, r := range s.Lifecycle {
		attrs.Lifecycle.Rules = append(attrs.Lifecycle.Rules, toRule(r))
	}
	return translateBucket("create bucket "+g.name, g.bucket.Create(ctx, project, attrs))
}

// UpdateBucket applies u in one PATCH, only if the bucket's metageneration
// is still ifMetageneration (so rules dropped by index are the ones read).
// A moved metageneration wraps traces.ErrPreconditionFailed, a missing
// bucket traces.ErrNotFound. Rules not dropped are written back unchanged.
func (g *GCS) UpdateBucket(ctx context.Context, u traces.BucketUpdate, ifMetageneration int64) (traces.BucketSettings, error) {
	var ua storage.BucketAttrsToUpdate
	if u.Versioning != nil {
		ua.VersioningEnabled = *u.Versioning
	}
	if u.SoftDelete != nil {
		ua.SoftDeletePolicy = &storage.SoftDeletePolicy{RetentionDuration: *u.SoftDelete}
	}
	if len(u.DropRules) > 0 || len(u.AddRules) > 0 {
		a, err := g.bucket.Attrs(ctx)
		if err != nil {
			return traces.BucketSettings{}, translateBucket("update bucket "+g.name, err)
		}
		if a.MetaGeneration != ifMetageneration {
			return traces.BucketSettings{}, fmt.Errorf("update bucket %s: metageneration %d, want %d: %w",
				g.name, a.MetaGeneration, ifMetageneration, traces.ErrPreconditionFailed)
		}
		var rules []storage.LifecycleRule
		for i, r := range a.Lifecycle.Rules {
			if !slices.Contains(u.DropRules, i) {
				rules = append(rules, r)
			}
		}
		for _, r := range u.AddRules {
			rules = append(rules, toRule(r))
		}
		ua.Lifecycle = &storage.Lifecycle{Rules: rules}
	}
	a, err := g.bucket.If(storage.BucketConditions{MetagenerationMatch: ifMetageneration}).Update(ctx, ua)
	if err != nil {
		return traces.BucketSettings{}, translateBucket("update bucket "+g.name, err)
	}
	return settings(a), nil
}

// Notifications lists the bucket's notification configs in ID order.
func (g *GCS) Notifications(ctx context.Context) ([]traces.NotificationConfig, error) {
	m, err := g.bucket.Notifications(ctx)
	if err != nil {
		return nil, translateBucket("list notifications of "+g.name, err)
	}
	out := make([]traces.NotificationConfig, 0, len(m))
	for _, n := range m {
		out = append(out, traces.NotificationConfig{
			ID: n.ID, Topic: "projects/" + n.TopicProjectID + "/topics/" + n.TopicID,
			EventTypes: n.EventTypes, PayloadFormat: n.PayloadFormat, ObjectNamePrefix: n.ObjectNamePrefix,
		})
	}
	slices.SortFunc(out, func(a, b traces.NotificationConfig) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

// AddNotification creates a notification config and returns it with its ID.
// It is not idempotent (GCS creates a duplicate on a repeat), so the client
// does not retry it; list first. A malformed topic wraps traces.ErrInvalid.
func (g *GCS) AddNotification(ctx context.Context, n traces.NotificationConfig) (traces.NotificationConfig, error) {
	project, topic, ok := parseTopic(n.Topic)
	if !ok {
		return traces.NotificationConfig{}, fmt.Errorf("add notification to %s: %w", g.name,
			traces.Invalid("topic", "%q is not projects/PROJECT/topics/TOPIC", n.Topic))
	}
	got, err := g.bucket.Retryer(storage.WithPolicy(storage.RetryNever)).AddNotification(ctx, &storage.Notification{
		TopicProjectID: project, TopicID: topic, EventTypes: n.EventTypes,
		PayloadFormat: n.PayloadFormat, ObjectNamePrefix: n.ObjectNamePrefix,
	})
	if err != nil {
		return traces.NotificationConfig{}, translateBucket("add notification to "+g.name, err)
	}
	n.ID = got.ID
	return n, nil
}

func parseTopic(s string) (project, topic string, ok bool) {
	p := strings.Split(s, "/")
	if len(p) != 4 || p[0] != "projects" || p[2] != "topics" || p[1] == "" || p[3] == "" {
		return "", "", false
	}
	return p[1], p[3], true
}

// translateBucket is translate plus 409, which only bucket creation meets.
func translateBucket(step string, err error) error {
	var ge *googleapi.Error
	if errors.As(err, &ge) && ge.Code == 409 {
		return errorf(step, traces.ErrConflict, err)
	}
	return translate(step, err)
}

func toRule(r traces.LifecycleRule) storage.LifecycleRule {
	return storage.LifecycleRule{
		Action:    storage.LifecycleAction{Type: r.Action, StorageClass: r.StorageClass},
		Condition: storage.LifecycleCondition{DaysSinceCustomTime: r.DaysSinceCustomTime},
	}
}

func fromRule(r storage.LifecycleRule) traces.LifecycleRule {
	c := r.Condition
	out := traces.LifecycleRule{Action: r.Action.Type, StorageClass: r.Action.StorageClass, DaysSinceCustomTime: c.DaysSinceCustomTime}
	add := func(name string, v any) { out.Other = append(out.Other, fmt.Sprintf("%s=%v", name, v)) }
	if c.AgeInDays != 0 || c.AllObjects {
		add("age", c.AgeInDays)
	}
	for name, t := range map[string]time.Time{"createdBefore": c.CreatedBefore, "customTimeBefore": c.CustomTimeBefore, "noncurrentTimeBefore": c.NoncurrentTimeBefore} {
		if !t.IsZero() {
			add(name, t.Format("2006-01-02"))
		}
	}
	if c.DaysSinceNoncurrentTime != 0 {
		add("daysSinceNoncurrentTime", c.DaysSinceNoncurrentTime)
	}
	if c.NumNewerVersions != 0 {
		add("numNewerVersions", c.NumNewerVersions)
	}
	switch c.Liveness {
	case storage.Live:
		add("isLive", true)
	case storage.Archived:
		add("isLive", false)
	}
	if len(c.MatchesPrefix) > 0 {
		add("matchesPrefix", c.MatchesPrefix)
	}
	if len(c.MatchesSuffix) > 0 {
		add("matchesSuffix", c.MatchesSuffix)
	}
	if len(c.MatchesStorageClasses) > 0 {
		add("matchesStorageClass", c.MatchesStorageClasses)
	}
	slices.Sort(out.Other)
	return out
}
