package notify

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/iam/apiv1/iampb"
	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

func TestPlanSubscription(t *testing.T) {
	t.Parallel()
	o := SetupOptions{Project: "p", Topic: "t", Subscription: "s"}.withDefaults()
	want := o.wantSubscription()
	edit := func(f func(s *pubsubpb.Subscription)) *pubsubpb.Subscription {
		s := o.wantSubscription()
		f(s)
		return s
	}
	for _, tc := range []struct {
		name  string
		cur   *pubsubpb.Subscription
		paths []string
		lines []string
	}{
		{"as made", want, nil, nil},
		{"Pub/Sub defaults", &pubsubpb.Subscription{Name: want.Name, Topic: want.Topic},
			[]string{"ack_deadline_seconds", "message_retention_duration", "expiration_policy", "dead_letter_policy", "retry_policy"},
			[]string{
				"update subscription projects/p/subscriptions/s: ack deadline 10s → 60s",
				"update subscription projects/p/subscriptions/s: message retention default → 7d",
				"update subscription projects/p/subscriptions/s: expiration after 31 idle days (unset) → never",
				"update subscription projects/p/subscriptions/s: dead letters none → to projects/p/topics/s-dead-letter after 100 delivery attempts",
				"update subscription projects/p/subscriptions/s: retry backoff immediate (no retry policy) → 10s–10m0s",
			}},
		{"expires after 31 days", edit(func(s *pubsubpb.Subscription) {
			s.ExpirationPolicy = &pubsubpb.ExpirationPolicy{Ttl: durationpb.New(31 * 24 * time.Hour)}
		}), []string{"expiration_policy"}, []string{"update subscription projects/p/subscriptions/s: expiration after 31d idle → never"}},
		{"fewer attempts", edit(func(s *pubsubpb.Subscription) { s.DeadLetterPolicy.MaxDeliveryAttempts = 5 }),
			[]string{"dead_letter_policy"}, []string{"update subscription projects/p/subscriptions/s: dead letters to projects/p/topics/s-dead-letter after 5 delivery attempts → to projects/p/topics/s-dead-letter after 100 delivery attempts"}},
		{"ack deadline 0 reads as 10s", edit(func(s *pubsubpb.Subscription) { s.AckDeadlineSeconds = 0 }),
			[]string{"ack_deadline_seconds"}, []string{"update subscription projects/p/subscriptions/s: ack deadline 10s → 60s"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			paths, lines := planSubscription(tc.cur, want)
			if d := cmp.Diff(tc.paths, paths); d != "" {
				t.Errorf("paths (-want +got):\n%s", d)
			}
			if d := cmp.Diff(tc.lines, lines); d != "" {
				t.Errorf("lines (-want +got):\n%s", d)
			}
		})
	}
}

func TestAddBinding(t *testing.T) {
	t.Parallel()
	p := &iampb.Policy{Bindings: []*iampb.Binding{
		{Role: RolePublisher, Members: []string{"user:a@example.com"}, Condition: nil},
	}}
	if !addBinding(p, RolePublisher, "serviceAccount:x@example.com") {
		t.Error("adding a member to an existing role: no change")
	}
	if addBinding(p, RolePublisher, "serviceAccount:x@example.com") {
		t.Error("adding the same member again: a change")
	}
	if !addBinding(p, RoleSubscriber, "serviceAccount:x@example.com") {
		t.Error("adding a new role: no change")
	}
	want := []*iampb.Binding{
		{Role: RolePublisher, Members: []string{"user:a@example.com", "serviceAccount:x@example.com"}},
		{Role: RoleSubscriber, Members: []string{"serviceAccount:x@example.com"}},
	}
	if len(p.Bindings) != 2 || !cmp.Equal(p.Bindings[0].Members, want[0].Members) || !cmp.Equal(p.Bindings[1].Members, want[1].Members) || p.Bindings[1].Role != RoleSubscriber {
		t.Errorf("bindings = %v, want %v", p.Bindings, want)
	}
}

func TestPubSubServiceAgent(t *testing.T) {
	t.Parallel()
	got, err := PubSubServiceAgent("service-123456789@gs-project-accounts.iam.gserviceaccount.com")
	if want := "service-123456789@gcp-sa-pubsub.iam.gserviceaccount.com"; err != nil || got != want {
		t.Errorf("PubSubServiceAgent = %q, %v; want %q", got, err, want)
	}
	if _, err := PubSubServiceAgent("tracegw@my-project.iam.gserviceaccount.com"); !errors.Is(err, traces.ErrInvalid) {
		t.Errorf("another account: %v, want ErrInvalid", err)
	}
}

func TestSetupOptionsRefused(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		o     SetupOptions
		field string
	}{
		{SetupOptions{Topic: "t", Subscription: "s"}, "pubsub-project"},
		{SetupOptions{Project: "p", Subscription: "s"}, "topic"},
		{SetupOptions{Project: "p", Topic: "t"}, "subscription"},
		{SetupOptions{Project: "p", Topic: "t", Subscription: "s", MaxDeliveryAttempts: 4}, "max-delivery-attempts"},
		{SetupOptions{Project: "p", Topic: "t", Subscription: "s", MaxDeliveryAttempts: 101}, "max-delivery-attempts"},
		{SetupOptions{Project: "p", Topic: "t", Subscription: "s", MaxBackoff: time.Hour}, "backoff"},
	} {
		// No client is needed: options are checked before any call.
		_, err := SetupPubSub(t.Context(), nil, tc.o)
		var fe *traces.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("SetupPubSub(%+v) = %v, want a FieldError on %s", tc.o, err, tc.field)
		}
	}
}

// TestSetupPubSubOfficialEmulator makes the notification path on the
// official Pub/Sub emulator (pstest's dead-letter policy is broken): a dry
// run changes nothing; the first run makes everything; the second changes
// and reports nothing; drift is repaired field by field; a subscription on
// another topic is refused; and a message nacked MaxDeliveryAttempts times
// lands in the dead-letter subscription. It sets PUBSUB_EMULATOR_HOST, so
// it is not parallel.
func TestSetupPubSubOfficialEmulator(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", testutil.PubSubEmulator(t))
	ctx := t.Context()
	client, err := pubsub.NewClient(ctx, testProject)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	suffix := randomHex(t)
	o := SetupOptions{
		Project: testProject, Topic: "gcs-" + suffix, Subscription: "notify-" + suffix,
		MaxDeliveryAttempts: 5, MinBackoff: time.Nanosecond, MaxBackoff: time.Second,
	}

	if _, err := CheckSubscription(ctx, client, o); !errors.Is(err, traces.ErrNotFound) || !strings.Contains(err.Error(), "tracegw setup-bucket") {
		t.Errorf("CheckSubscription before setup = %v; want ErrNotFound naming tracegw setup-bucket", err)
	}

	dry := o
	dry.DryRun = true
	rep, err := SetupPubSub(ctx, client, dry)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	if len(rep.Changes) != 4 || !strings.HasPrefix(rep.Changes[0], "would create topic") {
		t.Errorf("dry run changes = %q, want 4 lines starting with would create topic", rep.Changes)
	}
	if _, err := client.TopicAdminClient.GetTopic(ctx, &pubsubpb.GetTopicRequest{Topic: o.topicName()}); err == nil {
		t.Errorf("the dry run created the topic")
	}

	rep, err = SetupPubSub(ctx, client, o)
	if err != nil {
		t.Fatalf("first run: %v", err)
	}
	wantLines := []string{
		"create topic projects/tracegw-test/topics/gcs-" + suffix,
		"create dead-letter topic projects/tracegw-test/topics/notify-" + suffix + "-dead-letter",
		"create subscription projects/tracegw-test/subscriptions/notify-" + suffix + "-dead-letter on projects/tracegw-test/topics/notify-" + suffix + "-dead-letter: ack deadline 60s, message retention 7d, expiration never",
		"create subscription projects/tracegw-test/subscriptions/notify-" + suffix + " on projects/tracegw-test/topics/gcs-" + suffix + ": ack deadline 60s, message retention 7d, expiration never, dead letters to projects/tracegw-test/topics/notify-" + suffix + "-dead-letter after 5 delivery attempts, retry backoff 1ns–1s",
	}
	if d := cmp.Diff(wantLines, rep.Changes); d != "" {
		t.Errorf("first run (-want +got):\n%s", d)
	}
	got, err := client.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: o.subName()})
	if err != nil {
		t.Fatal(err)
	}
	if got.GetAckDeadlineSeconds() != 60 || got.GetMessageRetentionDuration().AsDuration() != 7*24*time.Hour ||
		got.GetExpirationPolicy() == nil || got.GetExpirationPolicy().GetTtl() != nil ||
		got.GetDeadLetterPolicy().GetDeadLetterTopic() != o.withDefaults().deadName() || got.GetDeadLetterPolicy().GetMaxDeliveryAttempts() != 5 {
		t.Errorf("subscription as made: %v", got)
	}

	rep, err = SetupPubSub(ctx, client, o)
	if err != nil || len(rep.Changes) != 0 {
		t.Errorf("second run: %q, %v; want no changes", rep.Changes, err)
	}
	if drift, err := CheckSubscription(ctx, client, o); err != nil || len(drift) != 0 {
		t.Errorf("CheckSubscription after setup = %q, %v; want nothing", drift, err)
	}

	// Drift: somebody shortened the ack deadline.
	_, err = client.SubscriptionAdminClient.UpdateSubscription(ctx, &pubsubpb.UpdateSubscriptionRequest{
		Subscription: &pubsubpb.Subscription{Name: o.subName(), AckDeadlineSeconds: 10},
		UpdateMask:   &fieldmaskpb.FieldMask{Paths: []string{"ack_deadline_seconds"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if drift, err := CheckSubscription(ctx, client, o); err != nil || len(drift) != 1 || !strings.Contains(drift[0], "ack deadline 10s → 60s") {
		t.Errorf("CheckSubscription after drift = %q, %v; want the ack deadline", drift, err)
	}
	rep, err = SetupPubSub(ctx, client, o)
	if err != nil || len(rep.Changes) != 1 || !strings.Contains(rep.Changes[0], "ack deadline 10s → 60s") {
		t.Errorf("repair run: %q, %v; want the ack deadline", rep.Changes, err)
	}

	// A subscription of that name on another topic is refused.
	other := o
	other.Topic = "other-" + suffix
	if _, err := SetupPubSub(ctx, client, other); !errors.Is(err, traces.ErrConflict) {
		t.Errorf("subscription on another topic: %v, want ErrConflict", err)
	}

	// Dead letters: a message nacked five times goes to the dead-letter
	// subscription, exactly once.
	pub := client.Publisher(o.Topic)
	t.Cleanup(pub.Stop)
	if _, err := pub.Publish(ctx, &pubsub.Message{Data: []byte("poison")}).Get(ctx); err != nil {
		t.Fatal(err)
	}
	// Nack every delivery until the dead-letter subscription has it.
	rctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var attempts atomic.Int32
	nacked := make(chan error, 1)
	go func() {
		nacked <- client.Subscriber(o.Subscription).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
			attempts.Add(1)
			m.Nack()
		})
	}()
	var dead []string
	err = client.Subscriber(o.Subscription+DeadLetterSuffix).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
		dead = append(dead, string(m.Data)+" after "+m.Attributes["CloudPubSubDeadLetterSourceDeliveryCount"])
		m.Ack()
		cancel()
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := <-nacked; err != nil {
		t.Fatal(err)
	}
	if want := []string{"poison after 5"}; !cmp.Equal(dead, want) || attempts.Load() != 5 {
		t.Errorf("dead letters %q after %d deliveries; want %q after 5", dead, attempts.Load(), want)
	}
}
