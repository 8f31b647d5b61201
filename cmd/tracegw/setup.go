package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/storage"

	"github.com/tracegw/tracegw/internal/notify"
)

// setup-bucket's Pub/Sub half: the notification path made before the
// bucket's notification config (which needs its topic).

// setupOptions are the notification path the flags describe.
func (c Config) setupOptions() notify.SetupOptions {
	return notify.SetupOptions{
		Project: c.PubSubProject, Topic: c.Topic, Subscription: c.Subscription,
		DeadLetterTopic: c.DeadLetterTopic, MaxDeliveryAttempts: c.MaxDeliveryAttempts,
		DryRun: c.DryRun,
	}
}

// setupPubSub makes the notification path (topics, subscriptions, and on
// real Google Cloud the service agents' IAM bindings) and prints each
// change. Against emulators (--gcs-endpoint or PUBSUB_EMULATOR_HOST set)
// IAM is skipped: they have none.
func setupPubSub(ctx context.Context, c Config, gcs *storage.Client, stdout io.Writer) error {
	o := c.setupOptions()
	if c.GCSEndpoint == "" && os.Getenv("PUBSUB_EMULATOR_HOST") == "" {
		agent, err := gcs.ServiceAccount(ctx, c.PubSubProject)
		if err != nil {
			return fmt.Errorf("look up the Cloud Storage service agent of project %s: %w", c.PubSubProject, err)
		}
		o.GCSServiceAgent = agent
		if o.PubSubServiceAgent, err = notify.PubSubServiceAgent(agent); err != nil {
			return err
		}
	}
	client, err := pubsub.NewClient(ctx, c.PubSubProject)
	if err != nil {
		return fmt.Errorf("pubsub client: %w", err)
	}
	defer client.Close()
	rep, err := notify.SetupPubSub(ctx, client, o)
	for _, ch := range rep.Changes {
		fmt.Fprintf(stdout, "pubsub: %s\n", ch)
	}
	for _, w := range rep.Warnings {
		fmt.Fprintf(stdout, "pubsub: warning: %s\n", w)
	}
	return err
}

// checkSubscription is what serve --run-notify and notify check before
// consuming: a missing subscription is an error naming the command that
// makes it (not the receive loop's gRPC NotFound), and settings that differ
// from setup-bucket's are logged as warnings.
func checkSubscription(ctx context.Context, c Config, log *slog.Logger) error {
	client, err := pubsub.NewClient(ctx, c.PubSubProject)
	if err != nil {
		return fmt.Errorf("pubsub client: %w", err)
	}
	defer client.Close()
	drift, err := notify.CheckSubscription(ctx, client, c.setupOptions())
	if err != nil {
		return fmt.Errorf("notification consumer: %w", err)
	}
	for _, d := range drift {
		log.Warn("subscription drift", "problem", d)
	}
	return nil
}
