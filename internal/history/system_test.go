package history

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/canvases"
	"github.com/tracegw/tracegw/internal/holds"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/notify"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
	"github.com/tracegw/tracegw/internal/ttl"
	"github.com/tracegw/tracegw/schema"
	"github.com/tracegw/tracegw/testutil"
)

// This file wires the whole system in process, the way `tracegw dev` does.
// The calls the histories make into the services are in driver_test.go;
// the fault wrappers the services are given in faults_test.go, the chaos
// relay in relay_test.go, bucket snapshots in snapshot_test.go.

const (
	psProject    = "tracegw-history"
	gcsTopic     = "gcs"     // the emulator publishes here
	relayedTopic = "relayed" // the chaos relay republishes here
	relaySub     = "relay"
	notifySub    = "notify" // the consumer reads this one
)

// system is one tracegw on a private PostgreSQL database, an emulator bucket
// and an in-process Pub/Sub, on the emulator's clock.
type system struct {
	emu     *testutil.Emu
	db      *index.DB
	gcs     *objstore.GCS // fault-free adapter: snapshots and the step GC
	objects *flakyObjects // what the services use
	ix      *flakyIndex
	faults  *faultSwitch
	policy  ttl.Policy

	svc      *tracestore.Service
	holds    *holds.Service
	jobs     *canvases.Service
	stepGC   *ttl.GC
	relay    *relay
	consumer *notify.Consumer

	mu     sync.Mutex
	passes []ttl.Summary // the step GC's, since takePasses
}

// newSystem starts everything; t.Cleanup stops it. relaySeed seeds the
// relay's delays and duplicates. dbURL, if set, is a database of the
// schema to empty and reuse (shrinking runs many short histories, and
// cloning a database costs more than one of them); else the test gets a
// fresh one.
func newSystem(t testing.TB, p ttl.Policy, relaySeed uint64, dbURL string) *system {
	t.Helper()
	ctx := t.Context()
	psOpts := testutil.PubSub(t)
	client, err := pubsub.NewClient(ctx, psProject, psOpts...)
	if err != nil {
		t.Fatalf("pubsub client: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	for _, ts := range [][2]string{{gcsTopic, relaySub}, {relayedTopic, notifySub}} {
		if err := notify.EnsureSubscription(ctx, client, psProject, ts[0], ts[1]); err != nil {
			t.Fatalf("subscription: %v", err)
		}
	}

	emu := testutil.EmulatorWithOptions(t, emulator.Options{Step: p.Interval, PubSubClientOptions: psOpts})
	s := &system{emu: emu, policy: p, faults: &faultSwitch{arms: map[string]int{}}}
	s.gcs = objstore.New(emu.Client, emu.Bucket)
	if _, err := ttl.SetupBucket(ctx, s.gcs, p, ttl.BucketOptions{Topic: "projects/" + psProject + "/topics/" + gcsTopic}, false); err != nil {
		t.Fatalf("set up bucket: %v", err)
	}
	if dbURL == "" {
		dbURL = testutil.PG(t)
	} else if err := emptyDatabase(ctx, dbURL); err != nil {
		t.Fatalf("empty the database: %v", err)
	}
	s.db, err = index.Open(ctx, dbURL, index.Options{MaxConns: 16})
	if err != nil {
		t.Fatalf("open index: %v", err)
	}
	t.Cleanup(s.db.Close)

	svcGCS := objstore.New(emu.Client, emu.Bucket)
	svcGCS.Attempts = 2 // one injected 503 is retried away, two fail the call
	s.objects = &flakyObjects{GCS: svcGCS, f: s.faults}
	s.ix = &flakyIndex{DB: s.db, f: s.faults}
	now := emu.E.Now
	// Wired as the gateway wires them: the step GC repairs through the
	// store and ends holds; the store and the canvas service renew the
	// keepers they promote through it.
	s.holds = holds.New(s.objects, s.ix, holds.Options{Now: now})
	// Operation tokens age on the database's clock, which the emulator's
	// steps do not move: a history spans weeks of emulator time in seconds.
	// The step GC runs while no operation does (an advance runs alone), so
	// every token it sees belongs to an operation that has ended, and it may
	// repair them all; passes that run beside operations keep the default
	// grace.
	stepOpts := s.gcOptions()
	stepOpts.RepairGrace = time.Microsecond
	if s.stepGC, err = ttl.New(s.gcs, s.db, p, now, nil, nil, stepOpts); err != nil {
		t.Fatalf("gc: %v", err)
	}
	s.svc = tracestore.New(s.objects, s.ix, tracestore.Options{Now: now, Renewer: s.stepGC, Holds: s.holds, Policy: s.stepGC})
	s.jobs = canvases.New(s.objects, s.ix, canvases.Options{Now: now, Holds: s.holds, Policy: s.stepGC, Renewer: s.stepGC})
	s.consumer, err = notify.New(notify.Subscription(client.Subscriber(notifySub), 0), s.db, s.gcs, emu.Bucket, notify.Options{
		MaxWait: 5 * time.Millisecond, Now: now,
	})
	if err != nil {
		t.Fatalf("consumer: %v", err)
	}
	pub := client.Publisher(relayedTopic)
	pub.PublishSettings.CountThreshold, pub.PublishSettings.DelayThreshold = 1, time.Millisecond
	t.Cleanup(pub.Stop)
	s.relay = &relay{pub: pub, rng: rand.New(rand.NewPCG(relaySeed, 0x7e1a7)), late: 0.3, dup: 0.1, maxDelay: 16}

	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	wg.Go(func() { errs <- s.consumer.Run(runCtx) })
	wg.Go(func() { errs <- s.relay.run(runCtx, client.Subscriber(relaySub)) })
	wg.Go(func() { errs <- s.jobs.Run(runCtx) })
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("background worker: %v", err)
			}
		}
	})
	emu.E.SetHooks(emulator.Hooks{OnStep: s.stepHook, Drain: s.drainHook})
	return s
}

// emptyDatabase truncates every table but the schema's version.
func emptyDatabase(ctx context.Context, url string) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT quote_ident(tablename) FROM pg_tables WHERE schemaname = 'public' AND 'public.' || tablename <> $1`, schema.VersionTable)
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil || len(tables) == 0 {
		return err
	}
	_, err = conn.Exec(ctx, "TRUNCATE "+strings.Join(tables, ", ")+" RESTART IDENTITY CASCADE")
	return err
}

// gcOptions are the options of every GC pass: as in production, a pass
// completes what failed operations left half done (the repair step) and
// ends holds whose end has come.
func (s *system) gcOptions() ttl.Options {
	return ttl.Options{
		Backoff: time.Millisecond, PatchesPerSecond: -1,
		Repair: repairFunc(func(ctx context.Context, c traces.CanvasID, id traces.TraceID, cutoff time.Time) error {
			return s.svc.Repair(ctx, c, id, cutoff)
		}),
		Holds: s.holds,
	}
}

// repairFunc adapts a function to ttl.Repairer.
type repairFunc func(ctx context.Context, c traces.CanvasID, id traces.TraceID, cutoff time.Time) error

func (f repairFunc) Repair(ctx context.Context, c traces.CanvasID, id traces.TraceID, cutoff time.Time) error {
	return f(ctx, c, id, cutoff)
}

// quiesce waits until the relay has received everything the emulator
// published and the consumer has applied everything the relay let through.
func (s *system) quiesce(ctx context.Context) error {
	if err := waitUntil(ctx, func() bool { return s.relay.received.Load() >= s.emu.E.Published() }); err != nil {
		return fmt.Errorf("relay received %d of %d notifications: %w", s.relay.received.Load(), s.emu.E.Published(), err)
	}
	if err := waitUntil(ctx, func() bool { return s.consumer.Applied() >= s.relay.republished.Load() }); err != nil {
		return fmt.Errorf("consumer applied %d of %d notifications: %w", s.consumer.Applied(), s.relay.republished.Load(), err)
	}
	return nil
}

// deliver lets the relay pass what is due (everything if all) and waits
// until the consumer has applied it.
func (s *system) deliver(ctx context.Context, all bool) error {
	if err := waitUntil(ctx, func() bool { return s.relay.received.Load() >= s.emu.E.Published() }); err != nil {
		return fmt.Errorf("relay received %d of %d notifications: %w", s.relay.received.Load(), s.emu.E.Published(), err)
	}
	if err := s.relay.release(ctx, all); err != nil {
		return err
	}
	return s.quiesce(ctx)
}

// stepHook is the emulator's OnStep hook: a GC pass, as `tracegw dev`
// runs one at every clock step; its summaries are kept for the report.
func (s *system) stepHook(ctx context.Context, _ time.Time) (int, error) {
	sum, err := s.stepGC.Pass(ctx, false)
	s.mu.Lock()
	s.passes = append(s.passes, sum)
	s.mu.Unlock()
	return sum.Renewed, err
}

// takePasses returns the step GC summaries since the last call.
func (s *system) takePasses() []ttl.Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.passes
	s.passes = nil
	return p
}

// drainHook is the emulator's Drain hook: at the end of a clock advance the
// relay lets through what is due, and the advance returns once the consumer
// has applied it.
func (s *system) drainHook(ctx context.Context) (int, error) {
	before := s.consumer.Applied()
	err := s.deliver(ctx, false)
	return int(s.consumer.Applied() - before), err
}

// waitUntil polls cond until it holds or 30 seconds pass.
func waitUntil(ctx context.Context, cond func() bool) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

// clearFaults disarms every injected fault: the emulator's and ours.
func (s *system) clearFaults() {
	s.faults.clear()
	s.emu.E.ClearFaults()
}

// arm injects one fault: "gcs:KIND" makes the emulator answer 503 to the
// next n calls of that kind (upload, read, metadata, delete, list); other
// names arm our switches (see flakyIndex and flakyObjects).
func (s *system) arm(name string, n int) {
	if kind, ok := cutPrefix(name, "gcs:"); ok {
		s.emu.E.InjectFaults(kind, n, http.StatusServiceUnavailable)
		return
	}
	s.faults.arm(name, n)
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && s[:len(prefix)] == prefix {
		return s[len(prefix):], true
	}
	return s, false
}
