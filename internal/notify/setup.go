package notify

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/tracegw/tracegw/internal/traces"
)

// Defaults of SetupOptions: the delivery settings of the deletion
// subscription (Pub/Sub allows 5 to 100 delivery attempts and
// backoffs of 0 to 600 s).
const (
	// DefaultMaxDeliveryAttempts is the most Pub/Sub allows. The consumer
	// acks what it cannot use (malformed, foreign) at once and nacks only
	// when the index cannot commit, so a message reaches the dead-letter
	// topic only after an index outage of many hours (with the backoffs
	// below, about 16 h); reconcile heals what it then missed.
	DefaultMaxDeliveryAttempts = 100
	// DefaultMinBackoff and DefaultMaxBackoff are the redelivery backoff
	// after a nack or an expired ack deadline.
	DefaultMinBackoff = 10 * time.Second
	DefaultMaxBackoff = 600 * time.Second
	// DeadLetterSuffix names the dead-letter topic (and its subscription)
	// after the subscription when SetupOptions.DeadLetterTopic is empty.
	DeadLetterSuffix = "-dead-letter"
)

// IAM roles SetupPubSub grants to Google's service agents.
const (
	RolePublisher  = "roles/pubsub.publisher"
	RoleSubscriber = "roles/pubsub.subscriber"
)

// SetupOptions describes the notification path SetupPubSub makes: the topic
// the bucket notifies, the consumer's subscription on it, and a dead-letter
// topic with a subscription that keeps what lands there. Names are short
// IDs within Project.
type SetupOptions struct {
	Project, Topic, Subscription string
	// DeadLetterTopic receives messages delivered MaxDeliveryAttempts times
	// without an ack; empty means Subscription + DeadLetterSuffix. A
	// subscription of the same name on it keeps them (a topic without
	// subscriptions drops what is published to it).
	DeadLetterTopic string
	// MaxDeliveryAttempts is 5 to 100; 0 means DefaultMaxDeliveryAttempts.
	MaxDeliveryAttempts int
	// MinBackoff and MaxBackoff are the retry policy; 0 means the defaults.
	MinBackoff, MaxBackoff time.Duration
	// GCSServiceAgent, if set, is the e-mail of the Cloud Storage service
	// agent of the bucket's project, granted RolePublisher on Topic (GCS
	// publishes the notifications as that agent). PubSubServiceAgent, if
	// set, is the Pub/Sub service agent of Project, granted RolePublisher on
	// the dead-letter topic and RoleSubscriber on the subscription (it moves
	// dead letters as that agent). Leave both empty against emulators, which
	// have no IAM.
	GCSServiceAgent, PubSubServiceAgent string
	// DryRun reads only and reports what it would change.
	DryRun bool
}

func (o SetupOptions) withDefaults() SetupOptions {
	if o.DeadLetterTopic == "" {
		o.DeadLetterTopic = o.Subscription + DeadLetterSuffix
	}
	if o.MaxDeliveryAttempts == 0 {
		o.MaxDeliveryAttempts = DefaultMaxDeliveryAttempts
	}
	if o.MinBackoff == 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff == 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	return o
}

// validate names the first bad setting as a traces.FieldError.
func (o SetupOptions) validate() error {
	switch {
	case o.Project == "":
		return traces.Invalid("pubsub-project", "is required")
	case o.Topic == "":
		return traces.Invalid("topic", "is required")
	case o.Subscription == "":
		return traces.Invalid("subscription", "is required")
	case o.MaxDeliveryAttempts < 5 || o.MaxDeliveryAttempts > 100:
		return traces.Invalid("max-delivery-attempts", "is %d: Pub/Sub allows 5 to 100", o.MaxDeliveryAttempts)
	case o.MinBackoff < 0 || o.MaxBackoff > 600*time.Second || o.MinBackoff > o.MaxBackoff:
		return traces.Invalid("backoff", "%s to %s: Pub/Sub allows 0 to 600 s, minimum first", o.MinBackoff, o.MaxBackoff)
	}
	return nil
}

func (o SetupOptions) topicName() string { return "projects/" + o.Project + "/topics/" + o.Topic }
func (o SetupOptions) subName() string {
	return "projects/" + o.Project + "/subscriptions/" + o.Subscription
}
func (o SetupOptions) deadName() string {
	return "projects/" + o.Project + "/topics/" + o.DeadLetterTopic
}
func (o SetupOptions) deadSubName() string {
	return "projects/" + o.Project + "/subscriptions/" + o.DeadLetterTopic
}

// wantSubscription is the deletion subscription SetupPubSub makes.
func (o SetupOptions) wantSubscription() *pubsubpb.Subscription {
	return &pubsubpb.Subscription{
		Name:                     o.subName(),
		Topic:                    o.topicName(),
		AckDeadlineSeconds:       int32(SubscriptionAckDeadline / time.Second),
		MessageRetentionDuration: durationpb.New(SubscriptionRetention),
		ExpirationPolicy:         &pubsubpb.ExpirationPolicy{}, // no TTL: never expires
		DeadLetterPolicy:         &pubsubpb.DeadLetterPolicy{DeadLetterTopic: o.deadName(), MaxDeliveryAttempts: int32(o.MaxDeliveryAttempts)},
		RetryPolicy:              &pubsubpb.RetryPolicy{MinimumBackoff: durationpb.New(o.MinBackoff), MaximumBackoff: durationpb.New(o.MaxBackoff)},
	}
}

// wantDeadSubscription keeps the dead letters: never expires, retains them
// as long as the main subscription retains its messages.
func (o SetupOptions) wantDeadSubscription() *pubsubpb.Subscription {
	return &pubsubpb.Subscription{
		Name:                     o.deadSubName(),
		Topic:                    o.deadName(),
		AckDeadlineSeconds:       int32(SubscriptionAckDeadline / time.Second),
		MessageRetentionDuration: durationpb.New(SubscriptionRetention),
		ExpirationPolicy:         &pubsubpb.ExpirationPolicy{},
	}
}

// SetupReport says what SetupPubSub changed (in a dry run: would change).
type SetupReport struct {
	Changes  []string
	Warnings []string
}

// SetupPubSub creates or fixes the notification path of the deletion
// consumer, idempotently, in dependency order: the topic, the dead-letter
// topic and its subscription, the subscription (SubscriptionAckDeadline,
// SubscriptionRetention, no expiration, the dead-letter policy and retry
// policy of o), then the service agents' IAM bindings when o names them.
// An existing subscription whose settings differ is updated in one call
// naming only the fields that differ; one attached to another topic is an
// error wrapping traces.ErrConflict (a subscription's topic cannot change:
// delete it first). A second run changes nothing and reports nothing.
// Errors name the resource; traces.ErrInvalid for bad options.
func SetupPubSub(ctx context.Context, client *pubsub.Client, o SetupOptions) (SetupReport, error) {
	o = o.withDefaults()
	var r SetupReport
	if err := o.validate(); err != nil {
		return r, fmt.Errorf("setup pubsub: %w", err)
	}
	did := func(s string) {
		if o.DryRun {
			s = "would " + s
		}
		r.Changes = append(r.Changes, s)
	}
	for _, t := range []struct{ name, what string }{{o.topicName(), "topic"}, {o.deadName(), "dead-letter topic"}} {
		created, err := ensureTopic(ctx, client, t.name, o.DryRun)
		if err != nil {
			return r, err
		}
		if created {
			did("create " + t.what + " " + t.name)
		}
	}
	for _, want := range []*pubsubpb.Subscription{o.wantDeadSubscription(), o.wantSubscription()} {
		changes, err := ensureSubscription(ctx, client, want, o.DryRun)
		if err != nil {
			return r, err
		}
		for _, c := range changes {
			did(c)
		}
	}
	grants := []struct {
		resource, role, agent string
		topic                 bool
	}{
		{o.topicName(), RolePublisher, o.GCSServiceAgent, true},
		{o.deadName(), RolePublisher, o.PubSubServiceAgent, true},
		{o.subName(), RoleSubscriber, o.PubSubServiceAgent, false},
	}
	for _, g := range grants {
		if g.agent == "" {
			continue
		}
		changed, err := ensureBinding(ctx, client, g.resource, g.topic, g.role, "serviceAccount:"+g.agent, o.DryRun)
		if err != nil {
			return r, err
		}
		if changed {
			did(fmt.Sprintf("grant %s on %s to serviceAccount:%s", g.role, g.resource, g.agent))
		}
	}
	return r, nil
}

// CheckSubscription reports, changing nothing, how the deletion
// subscription differs from what SetupPubSub makes (one line each), for
// serve and notify to warn at start. A missing subscription or topic is an
// error wrapping traces.ErrNotFound that says to run `tracegw setup-bucket`.
func CheckSubscription(ctx context.Context, client *pubsub.Client, o SetupOptions) ([]string, error) {
	o = o.withDefaults()
	cur, err := client.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: o.subName()})
	if status.Code(err) == codes.NotFound {
		return nil, fmt.Errorf("subscription %s does not exist: run `tracegw setup-bucket` (same --pubsub-project, --topic and --subscription) "+
			"to create the notification path (topic, subscription, dead-letter topic, the bucket's notification config): %w", o.subName(), traces.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("get subscription %s: %w", o.subName(), err)
	}
	if cur.GetTopic() != o.topicName() {
		return nil, fmt.Errorf("subscription %s is attached to %s, not %s: %w", o.subName(), cur.GetTopic(), o.topicName(), traces.ErrConflict)
	}
	// The dead-letter and retry policies are setup-bucket's flags, not
	// serve's: only their absence is drift here.
	want := o.wantSubscription()
	want.DeadLetterPolicy, want.RetryPolicy = nil, nil
	_, changes := planSubscription(cur, want)
	if cur.GetDeadLetterPolicy().GetDeadLetterTopic() == "" {
		changes = append(changes, "subscription "+o.subName()+" has no dead-letter topic")
	}
	for i, c := range changes {
		changes[i] = c + " (run `tracegw setup-bucket`)"
	}
	return changes, nil
}

// ensureTopic creates topic unless it exists; created reports whether it
// did (or, in a dry run, would).
func ensureTopic(ctx context.Context, client *pubsub.Client, name string, dryRun bool) (created bool, err error) {
	_, err = client.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: name})
	switch {
	case err == nil:
		return false, nil
	case status.Code(err) != codes.NotFound:
		return false, fmt.Errorf("get topic %s: %w", name, err)
	case dryRun:
		return true, nil
	}
	_, err = client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: name})
	if status.Code(err) == codes.AlreadyExists { // a concurrent setup made it
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("create topic %s: %w", name, err)
	}
	return true, nil
}

// ensureSubscription creates want, or updates the fields of an existing
// subscription that differ from it.
func ensureSubscription(ctx context.Context, client *pubsub.Client, want *pubsubpb.Subscription, dryRun bool) ([]string, error) {
	admin := client.SubscriptionAdminClient
	cur, err := admin.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: want.Name})
	if status.Code(err) == codes.NotFound {
		line := "create subscription " + want.Name + " on " + want.Topic + ": " + describeSubscription(want)
		if dryRun {
			return []string{line}, nil
		}
		_, err := admin.CreateSubscription(ctx, want)
		if status.Code(err) == codes.AlreadyExists {
			return ensureSubscription(ctx, client, want, dryRun) // a concurrent setup made it: check it
		}
		if err != nil {
			return nil, fmt.Errorf("create subscription %s: %w", want.Name, err)
		}
		return []string{line}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get subscription %s: %w", want.Name, err)
	}
	if cur.GetTopic() != want.Topic {
		return nil, fmt.Errorf("subscription %s is attached to %s, not %s; a subscription's topic cannot change: delete it (its unacked messages go with it) and run setup-bucket again: %w",
			want.Name, cur.GetTopic(), want.Topic, traces.ErrConflict)
	}
	paths, changes := planSubscription(cur, want)
	if len(paths) == 0 || dryRun {
		return changes, nil
	}
	_, err = admin.UpdateSubscription(ctx, &pubsubpb.UpdateSubscriptionRequest{
		Subscription: want, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths},
	})
	if err != nil {
		return nil, fmt.Errorf("update subscription %s (%s): %w", want.Name, strings.Join(paths, ", "), err)
	}
	return changes, nil
}

// planSubscription compares an existing subscription with want: the field
// mask paths to update and one line per difference. Only the fields
// SetupPubSub sets are compared; a nil policy in want is not compared.
func planSubscription(cur, want *pubsubpb.Subscription) (paths, changes []string) {
	diff := func(path, what, have, should string) {
		if have != should {
			paths = append(paths, path)
			changes = append(changes, fmt.Sprintf("update subscription %s: %s %s → %s", want.Name, what, have, should))
		}
	}
	diff("ack_deadline_seconds", "ack deadline", seconds(ackDeadline(cur)), seconds(ackDeadline(want)))
	diff("message_retention_duration", "message retention", formatDur(cur.GetMessageRetentionDuration()), formatDur(want.GetMessageRetentionDuration()))
	diff("expiration_policy", "expiration", expiry(cur), expiry(want))
	if want.DeadLetterPolicy != nil {
		diff("dead_letter_policy", "dead letters", deadLetters(cur), deadLetters(want))
	}
	if want.RetryPolicy != nil {
		diff("retry_policy", "retry backoff", backoff(cur), backoff(want))
	}
	return paths, changes
}

// ackDeadline is the subscription's ack deadline; Pub/Sub reads 0 as 10 s.
func ackDeadline(s *pubsubpb.Subscription) time.Duration {
	if s.GetAckDeadlineSeconds() == 0 {
		return 10 * time.Second
	}
	return time.Duration(s.GetAckDeadlineSeconds()) * time.Second
}

func seconds(d time.Duration) string { return fmt.Sprintf("%ds", int64(d/time.Second)) }

// formatDur renders a protobuf duration; an unset one is Pub/Sub's default.
func formatDur(d *durationpb.Duration) string {
	if d == nil {
		return "default"
	}
	v := d.AsDuration()
	if v > 0 && v%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", v/(24*time.Hour))
	}
	return v.String()
}

// expiry: an unset expiration policy means "deleted after 31 idle days";
// a set one without a TTL means never.
func expiry(s *pubsubpb.Subscription) string {
	switch p := s.GetExpirationPolicy(); {
	case p == nil:
		return "after 31 idle days (unset)"
	case p.GetTtl() == nil:
		return "never"
	default:
		return "after " + formatDur(p.GetTtl()) + " idle"
	}
}

func deadLetters(s *pubsubpb.Subscription) string {
	p := s.GetDeadLetterPolicy()
	if p.GetDeadLetterTopic() == "" {
		return "none"
	}
	return fmt.Sprintf("to %s after %d delivery attempts", p.GetDeadLetterTopic(), p.GetMaxDeliveryAttempts())
}

func backoff(s *pubsubpb.Subscription) string {
	p := s.GetRetryPolicy()
	if p == nil {
		return "immediate (no retry policy)"
	}
	return formatDur(p.GetMinimumBackoff()) + "–" + formatDur(p.GetMaximumBackoff())
}

func describeSubscription(s *pubsubpb.Subscription) string {
	parts := []string{
		"ack deadline " + seconds(ackDeadline(s)),
		"message retention " + formatDur(s.GetMessageRetentionDuration()),
		"expiration " + expiry(s),
	}
	if s.DeadLetterPolicy != nil {
		parts = append(parts, "dead letters "+deadLetters(s), "retry backoff "+backoff(s))
	}
	return strings.Join(parts, ", ")
}

// ensureBinding adds member to role in the IAM policy of a topic (or a
// subscription), read-modify-write guarded by the policy's etag.
func ensureBinding(ctx context.Context, client *pubsub.Client, resource string, topic bool, role, member string, dryRun bool) (bool, error) {
	get, set := client.SubscriptionAdminClient.GetIamPolicy, client.SubscriptionAdminClient.SetIamPolicy
	if topic {
		get, set = client.TopicAdminClient.GetIamPolicy, client.TopicAdminClient.SetIamPolicy
	}
	p, err := get(ctx, &iampb.GetIamPolicyRequest{Resource: resource})
	if status.Code(err) == codes.NotFound && dryRun {
		return true, nil // created by this run
	}
	if err != nil {
		return false, fmt.Errorf("get IAM policy of %s: %w", resource, err)
	}
	if !addBinding(p, role, member) {
		return false, nil
	}
	if dryRun {
		return true, nil
	}
	if _, err := set(ctx, &iampb.SetIamPolicyRequest{Resource: resource, Policy: p}); err != nil {
		return false, fmt.Errorf("grant %s on %s to %s: %w", role, resource, member, err)
	}
	return true, nil
}

// addBinding adds member to role in p (unconditional bindings only) and
// reports whether p changed.
func addBinding(p *iampb.Policy, role, member string) bool {
	for _, b := range p.Bindings {
		if b.Role == role && b.Condition == nil {
			if slices.Contains(b.Members, member) {
				return false
			}
			b.Members = append(b.Members, member)
			return true
		}
	}
	p.Bindings = append(p.Bindings, &iampb.Binding{Role: role, Members: []string{member}})
	return true
}

// gcsAgent matches the e-mail of a project's Cloud Storage service agent,
// which carries the project number.
var gcsAgent = regexp.MustCompile(`^service-(\d+)@gs-project-accounts\.iam\.gserviceaccount\.com$`)

// PubSubServiceAgent derives the Pub/Sub service agent of a project from
// its Cloud Storage service agent (what storage.Client.ServiceAccount
// returns): both are named after the project number. The error wraps
// traces.ErrInvalid for an e-mail of another shape.
func PubSubServiceAgent(gcsServiceAgent string) (string, error) {
	m := gcsAgent.FindStringSubmatch(gcsServiceAgent)
	if m == nil {
		return "", fmt.Errorf("%q is not a Cloud Storage service agent (service-NUMBER@gs-project-accounts.iam.gserviceaccount.com): %w",
			gcsServiceAgent, traces.ErrInvalid)
	}
	return "service-" + m[1] + "@gcp-sa-pubsub.iam.gserviceaccount.com", nil
}
