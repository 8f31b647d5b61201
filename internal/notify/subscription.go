package notify

import (
	"context"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/tracegw/tracegw/internal/traces"
)

// Settings EnsureSubscription gives a new subscription. Pub/Sub deletes a
// subscription after 31 idle days unless its expiration policy says never,
// and keeps unacked messages 7 days by default (10 minutes to 31 days).
const (
	// SubscriptionRetention keeps unacked notifications for a week: the
	// length of index outage the consumer survives without reconcile.
	SubscriptionRetention = 7 * 24 * time.Hour
	// SubscriptionAckDeadline covers a batch commit with a wide margin; the
	// client extends leases beyond it anyway.
	SubscriptionAckDeadline = 60 * time.Second
)

// EnsureSubscription creates the topic projects/{project}/topics/{topic} and
// the subscription projects/{project}/subscriptions/{sub} on it unless they
// exist, for `tracegw dev` and tests; production sets them up with the bucket.
// A new subscription never expires (an empty expiration policy: an unset one
// would delete it after 31 idle days), retains messages SubscriptionRetention
// and has an ack deadline of SubscriptionAckDeadline. An existing
// subscription is left as it is, but if it is attached to another topic the
// error wraps traces.ErrConflict. Safe for concurrent use; racing creators
// both succeed.
func EnsureSubscription(ctx context.Context, client *pubsub.Client, project, topic, sub string) error {
	topicName := "projects/" + project + "/topics/" + topic
	subName := "projects/" + project + "/subscriptions/" + sub
	_, err := client.TopicAdminClient.CreateTopic(ctx, &pubsubpb.Topic{Name: topicName})
	if err != nil && status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create topic %s: %w", topicName, err)
	}
	_, err = client.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name:                     subName,
		Topic:                    topicName,
		AckDeadlineSeconds:       int32(SubscriptionAckDeadline / time.Second),
		MessageRetentionDuration: durationpb.New(SubscriptionRetention),
		ExpirationPolicy:         &pubsubpb.ExpirationPolicy{},
	})
	if err == nil {
		return nil
	}
	if status.Code(err) != codes.AlreadyExists {
		return fmt.Errorf("create subscription %s: %w", subName, err)
	}
	s, err := client.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: subName})
	if err != nil {
		return fmt.Errorf("get subscription %s: %w", subName, err)
	}
	if s.GetTopic() != topicName {
		return fmt.Errorf("subscription %s is attached to %s, not %s: %w", subName, s.GetTopic(), topicName, traces.ErrConflict)
	}
	return nil
}
