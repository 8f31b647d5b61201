package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/notify"
	"github.com/tracegw/tracegw/internal/ttl"
)

// dev's retention: the bucket set up against the data dir's policy, GC and
// the notification consumer, and the emulator's clock steps that run GC and
// wait for the deletions' notifications.

// wireRetention sets the bucket up (lifecycle rule, notification config),
// creates the topic and subscription, and builds the GC and the consumer;
// the emulator's clock then runs GC at each step and waits for the
// resulting notifications to be consumed.
func (d *devSystem) wireRetention(ctx context.Context, c Config) error {
	// A data dir kept from a run with another --retention has its rule:
	// set the rest of the bucket up against it, and change the retention
	// below the way `tracegw retention set` does.
	p := c.policy()
	if s, err := d.st.gcs.BucketSettings(ctx); err == nil {
		if r := ttl.ReadRule(s); r.Found {
			p.Retention = time.Duration(r.Days) * ttl.Day
		}
	}
	rep, err := ttl.SetupBucket(ctx, d.st.gcs, p, ttl.BucketOptions{Project: c.PubSubProject, Topic: c.topicName()}, false)
	if err != nil {
		return fmt.Errorf("set up bucket: %w", err)
	}
	for _, ch := range rep.Changes {
		d.log.Info("bucket set up", "change", ch)
	}
	if d.queue != nil {
		d.consumer, err = d.st.newQueueConsumer(d.queue, c.Bucket)
	} else {
		d.consumer, err = d.newPubSubConsumer(ctx, c)
	}
	if err != nil {
		return err
	}
	d.closers = append(d.closers, d.consumer.Close)
	d.gc = d.st.gc
	if _, err := d.gc.Check(ctx); errors.Is(err, ttl.ErrDisagree) {
		d.log.Info("the flags differ from the retention policy of the data dir: changing it", "reason", err)
		_, err := ttl.Change(ctx, d.st.objects, d.st.db, c.policy(), d.emu.Now, d.log, ttl.ChangeRequest{
			Retention: time.Duration(c.Retention), Keep: c.KeepPerToplevel,
		}, ttl.ChangeOptions{Step: func(line string) { d.log.Info("retention set", "step", line) }})
		if err != nil {
			return fmt.Errorf("change the retention policy to the flags': %w", err)
		}
	} else if err != nil {
		return err
	}
	d.emu.SetHooks(emulator.Hooks{OnStep: d.gc.Step, Drain: d.drain})
	return nil
}

// newPubSubConsumer creates the topic and subscription on the Pub/Sub at
// PUBSUB_EMULATOR_HOST and builds the consumer on it.
func (d *devSystem) newPubSubConsumer(ctx context.Context, c Config) (*consumer, error) {
	ps, err := pubsub.NewClient(ctx, c.PubSubProject, d.pubsub.Opts...)
	if err != nil {
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	err = notify.EnsureSubscription(ctx, ps, c.PubSubProject, c.Topic, c.Subscription)
	_ = ps.Close()
	if err != nil {
		return nil, err
	}
	return d.st.newConsumer(ctx, c, d.pubsub.Opts...)
}

// drain waits until the consumer has handled every notification the
// emulator published, and reports how many it handled since the last call.
func (d *devSystem) drain(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for d.consumer.Applied() < d.emu.Published() {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for notifications: %d of %d consumed: %w", d.consumer.Applied(), d.emu.Published(), ctx.Err())
		case <-tick.C:
		}
	}
	now := d.consumer.Applied()
	n := now - d.drained
	d.drained = now
	return int(n), nil
}
