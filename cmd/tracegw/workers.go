package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/storage"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/tracegw/tracegw/internal/notify"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/ttl"
)

// policy is the retention policy the flags describe.
func (c Config) policy() ttl.Policy {
	return ttl.Policy{
		Retention: time.Duration(c.Retention), Margin: time.Duration(c.RenewMargin),
		Interval: c.GCInterval, Keep: c.KeepPerToplevel,
	}
}

// ValidateRetention checks the safety arithmetic between retention, GC
// interval and renewal margin (ttl.Policy.Validate); messages name the flag.
func (c Config) ValidateRetention() error { return policyFlagErrors(c.policy().Validate()) }

// policyFlags are the flags of ttl.Policy's fields.
var policyFlags = map[string]string{
	ttl.FieldRetention: "--retention", ttl.FieldMargin: "--renew-margin",
	ttl.FieldInterval: "--gc-interval", ttl.FieldKeep: "--keep-per-toplevel",
}

var policyFieldRE = regexp.MustCompile(`\b(` + ttl.FieldRetention + `|` + ttl.FieldMargin + `|` + ttl.FieldInterval + `|` + ttl.FieldKeep + `)\b`)

// policyFlagErrors says the policy's field errors in flags: "renewMargin:
// 2d is unsafe: … 3 x gcInterval + 1d" becomes "--renew-margin 2d is
// unsafe: … 3 x --gc-interval + 1d". Other errors pass as they are.
func policyFlagErrors(err error) error {
	errs := []error{err}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	}
	out := make([]error, 0, len(errs))
	for _, e := range errs {
		var fe *traces.FieldError
		if errors.As(e, &fe) {
			if flag, ok := policyFlags[fe.Field]; ok {
				reason := policyFieldRE.ReplaceAllStringFunc(fe.Reason, func(f string) string { return policyFlags[f] })
				e = fmt.Errorf("%s %s: %w", flag, reason, traces.ErrInvalid)
			}
		}
		out = append(out, e)
	}
	return errors.Join(out...)
}

// topicName is the notification topic's full name.
func (c Config) topicName() string { return "projects/" + c.PubSubProject + "/topics/" + c.Topic }

// newGC is the stack's retention job, reporting progress to onProgress
// when it is set.
func (s *stack) newGC(onProgress func(done, total int)) *ttl.GC {
	s.gc.SetProgress(onProgress)
	return s.gc
}

// replicaName names this process in the GC pass history.
func replicaName() string {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return fmt.Sprintf("%s/%d", host, os.Getpid())
}

// consumer is the notification consumer with the Pub/Sub client it owns
// (none when it reads an in-process queue).
type consumer struct {
	*notify.Consumer
	client *pubsub.Client
}

func (c *consumer) Close() {
	if c.client != nil {
		_ = c.client.Close()
	}
}

// consumerOptions are the consumer's settings on the stack.
func (s *stack) consumerOptions() notify.Options {
	return notify.Options{
		Logger: s.log, Registerer: s.reg, Now: s.now,
		Unmatched: s.db.RemoveUnmatched, // 404 rows leave with their objects
	}
}

// newQueueConsumer builds the deletion consumer on an in-process queue
// (tracegw dev, where the emulator publishes into it).
func (s *stack) newQueueConsumer(q *notify.Queue, bucket string) (*consumer, error) {
	cons, err := notify.New(q, s.db, s.objects, bucket, s.consumerOptions())
	if err != nil {
		return nil, err
	}
	return &consumer{Consumer: cons}, nil
}

// newConsumer connects to Pub/Sub (PUBSUB_EMULATOR_HOST, opts, or real
// credentials) and builds the deletion consumer on the stack; /readyz then
// checks the subscription too.
func (s *stack) newConsumer(ctx context.Context, c Config, opts ...option.ClientOption) (*consumer, error) {
	client, err := pubsub.NewClient(ctx, c.PubSubProject, opts...)
	if err != nil {
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	cons, err := notify.New(notify.Subscription(client.Subscriber(c.Subscription), notify.DefaultMaxOutstanding), s.db, s.objects, c.Bucket, s.consumerOptions())
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	sub := "projects/" + c.PubSubProject + "/subscriptions/" + c.Subscription
	ready := func(ctx context.Context) error {
		_, err := client.SubscriptionAdminClient.GetSubscription(ctx, &pubsubpb.GetSubscriptionRequest{Subscription: sub})
		return err
	}
	// Say now, and what to do, rather than with the first Receive's raw
	// gRPC NotFound.
	if err := ready(ctx); status.Code(err) == codes.NotFound {
		_ = client.Close()
		return nil, errors.New(subscriptionHint(c)) // says all Pub/Sub's NotFound says, and what to do
	}
	s.subscriptionReady = ready
	return &consumer{Consumer: cons, client: client}, nil
}

// subscriptionHint says how to get the subscription the consumer reads.
func subscriptionHint(c Config) string {
	return fmt.Sprintf("subscription projects/%s/subscriptions/%s does not exist: "+
		"run `tracegw setup-bucket` (it creates the notification topic and this subscription), "+
		"or name an existing one with --subscription and --pubsub-project (TRACEGW_SUBSCRIPTION, TRACEGW_PUBSUB_PROJECT)",
		c.PubSubProject, c.Subscription)
}

// explainConsumer adds subscriptionHint to a consumer's error when its
// subscription is gone (deleted while it ran).
func explainConsumer(err error, c Config) error {
	if errors.Is(err, traces.ErrNotFound) {
		return fmt.Errorf("%w: %s", err, subscriptionHint(c))
	}
	return err
}

// checkBucket warns about lifecycle or notification drift at start; serve
// never rewrites a bucket (setup-bucket does).
func (s *stack) checkBucket(ctx context.Context, c Config) {
	warnings, err := ttl.CheckBucket(ctx, s.gcs, c.policy(), c.topicName())
	if err != nil {
		s.log.Warn("bucket check failed", "err", err)
		return
	}
	for _, w := range warnings {
		s.log.Warn("bucket drift: run tracegw setup-bucket", "problem", w)
	}
}

// objstoreFor is the bucket adapter for commands that need no index.
func objstoreFor(client *storage.Client, bucket string) *objstore.GCS {
	return objstore.New(client, bucket)
}
