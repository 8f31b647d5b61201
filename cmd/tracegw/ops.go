package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/tracegw/tracegw/internal/notify"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/ttl"
)

// The operator commands: setup-bucket, gc, notify and reconcile. Each builds
// only the backends it needs.

func runSetupBucket(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := Load("setup-bucket", args, os.Getenv, nil)
	if err != nil {
		return err
	}
	if err := c.ValidateRetention(); err != nil {
		return err
	}
	client, err := storageClient(ctx, gcsEndpoint(c))
	if err != nil {
		return fmt.Errorf("storage client: %w", err)
	}
	defer client.Close()
	gcs := objstoreFor(client, c.Bucket)
	if c.Topic != "" {
		// Refuse what SetupBucket would refuse (another retention) before
		// creating anything in Pub/Sub.
		if _, err := ttl.SetupBucket(ctx, gcs, c.policy(), ttl.BucketOptions{Project: c.PubSubProject}, true); err != nil {
			return err
		}
		// The notification path first: the bucket's notification config
		// names its topic, which must exist.
		if err := setupPubSub(ctx, c, client, stdout); err != nil {
			return err
		}
	}
	topic := c.topicName()
	if c.Topic == "" {
		topic = "" // no notification config (SetupBucket warns)
	}
	rep, err := ttl.SetupBucket(ctx, gcs, c.policy(),
		ttl.BucketOptions{Project: c.PubSubProject, Topic: topic}, c.DryRun)
	if err != nil {
		return err
	}
	printBucketReport(stdout, c.Bucket, rep)
	return nil
}

// printBucketReport prints each change and warning; nothing when the
// bucket is as it should be.
func printBucketReport(w io.Writer, bucket string, rep ttl.BucketReport) {
	for _, ch := range rep.Changes {
		fmt.Fprintf(w, "bucket %s: %s\n", bucket, ch)
	}
	for _, wn := range rep.Warnings {
		fmt.Fprintf(w, "bucket %s: warning: %s\n", bucket, wn)
	}
}

func runGC(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := Load("gc", args, os.Getenv, nil)
	if err != nil {
		return err
	}
	if err := c.ValidateRetention(); err != nil {
		return err
	}
	if c.DatabaseURL == "" {
		return errors.New("--database-url (TRACEGW_DATABASE_URL) is required")
	}
	log := newLogger(stderr, false)
	now, clock, stop := clockOf(ctx, c, log) // the emulator's clock against tracegw dev or emulator
	defer stop()
	st, err := newStack(ctx, c, log, now, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	if clock != nil {
		st.gc.SetWait(clock.Wait)
	}
	var bar *progressbar.ProgressBar
	if c.Once || c.DryRun {
		bar = newBar(stderr, 0, "gc: due canvases", false)
	}
	gc := st.newGC(gcProgress(bar))
	if _, err := gc.Check(ctx); err != nil {
		return err
	}
	if !c.Once && !c.DryRun {
		return gc.Run(ctx)
	}
	s, err := gc.Pass(ctx, c.DryRun)
	endBar(bar)
	verb := "renewed"
	if s.DryRun {
		verb = "would renew"
	}
	fmt.Fprintf(stdout, "gc: %d canvases (%d skipped: another replica), examined %d keepers: %s %d, already fresh %d, held %d, gone %d, failed %d; %d customTime updates in %s\n",
		s.Canvases, s.Skipped, s.Examined, verb, s.Renewed, s.AlreadyFresh, s.Held, s.Gone, s.Failed, s.Patches, s.Duration.Round(time.Millisecond))
	return err
}

func runNotify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := Load("notify", args, os.Getenv, nil)
	if err != nil {
		return err
	}
	if c.DatabaseURL == "" {
		return errors.New("--database-url (TRACEGW_DATABASE_URL) is required")
	}
	log := newLogger(stderr, false)
	now, _, stop := clockOf(ctx, c, log) // notification lag on the emulator's clock against one
	defer stop()
	st, err := newStack(ctx, c, log, now, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := checkSubscription(ctx, c, log); err != nil {
		return err
	}
	cons, err := st.newConsumer(ctx, c)
	if err != nil {
		return err
	}
	defer cons.Close()
	log.Info("consuming notifications", "subscription", c.Subscription, "bucket", c.Bucket)
	return explainConsumer(cons.Run(ctx), c)
}

func runReconcile(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := Load("reconcile", args, os.Getenv, nil)
	if err != nil {
		return err
	}
	if c.DatabaseURL == "" {
		return errors.New("--database-url (TRACEGW_DATABASE_URL) is required")
	}
	var canvas *traces.CanvasID
	if c.Canvas != "" {
		id, err := traces.ParseCanvasID(c.Canvas)
		if err != nil {
			return fmt.Errorf("--canvas: %w", err)
		}
		canvas = &id
	}
	st, err := newStack(ctx, c, newLogger(stderr, false), time.Now, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	lister, done := withBar(st.objects, stderr, "reconcile: objects listed")
	rep, err := notify.Reconcile(ctx, lister, st.db, canvas, c.DryRun)
	done()
	fmt.Fprintf(stdout, "reconcile: listed %d objects (%d traces, %d foreign), compared %d indexed traces\n",
		rep.Objects, rep.Traces, rep.Foreign, rep.Rows)
	fmt.Fprintf(stdout, "  objects gone: %d (rows removed: %d)\n", rep.Missing, rep.Removed)
	fmt.Fprintf(stdout, "  objects without index rows: %d (they expire on their own)\n", rep.Orphans)
	fmt.Fprintf(stdout, "  objects without customTime: %d (they never expire)\n", rep.NoCustomTime)
	for _, k := range rep.NoCustomTimeKeys {
		fmt.Fprintf(stdout, "    %s\n", k)
	}
	return err
}
