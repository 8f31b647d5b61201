package main

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/internal/days"
	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/testutil"
)

// The shape of TestReplicas' run.
const (
	replicaCount   = 3
	replicaStep    = time.Hour // one --gc-interval per clock step
	replicaDays    = 21        // three retention periods
	replicaLoadMax = 24        // clock steps the load may span
	replicaWorkers = 8
	replicaOps     = 120 // per worker
)

// TestReplicas runs the production shape as separate processes: the
// tracegw binary (built once with go build) as `tracegw emulator`, the
// official Pub/Sub emulator, one PostgreSQL, and three `tracegw serve
// --run-gc --run-notify` replicas on their own ports, set up with `tracegw
// migrate` and `tracegw setup-bucket`. The Go client saves, replaces, adds
// layers and holds through all three while the emulator's clock moves an
// hour at a time; one replica is killed with SIGKILL a third into the load
// and restarted at two thirds. The clock then moves on, an hour at a time,
// to three retention periods; each step waits until a replica's GC has run
// at the new time (the pass history). A recording proxy in front of the
// emulator sees every customTime PATCH; an audit subscription on the topic
// sees every notification. Then:
//
//   - the index has no row whose object is gone (the notifications did it)
//     and `tracegw reconcile` finds nothing to remove;
//   - every acknowledged trace that is a keeper or held is readable and
//     listed (the toplevel lists are exactly the model's where nothing is
//     uncertain; held traces are in the canvas's holds), and every one
//     that is neither and whose retention is over is gone;
//   - no object was renewed twice within one GC interval, across replicas;
//   - every object that is gone had its deletion notification.
func TestReplicas(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	bin := buildTracegw(t, dir)
	psAddr := testutil.PubSubEmulator(t)
	dbURL := testutil.PG(t)
	suffix := strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	project, topic, sub, bucket := "tracegw-replicas", "gcs-"+suffix, "notify-"+suffix, "traces-"+suffix
	env := []string{"PUBSUB_EMULATOR_HOST=" + psAddr}

	emuURL := fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
	emu := startProc(t, "emulator", dir, bin, env, "emulator", "--listen", strings.TrimPrefix(emuURL, "http://"), "--data-dir", fastDir(t))
	waitHTTP(t, emu, emuURL+"/_emulator/clock")
	rec, proxyURL := newPatchRecorder(t, emuURL)
	backends := []string{"--database-url", dbURL, "--gcs-endpoint", proxyURL, "--bucket", bucket,
		"--pubsub-project", project, "--topic", topic, "--subscription", sub}
	runProc(t, bin, env, "migrate", "--database-url", dbURL)
	runProc(t, bin, env, append([]string{"setup-bucket"}, backends[2:]...)...)

	audit := startAudit(t, psAddr, project, topic)

	keyFile := filepath.Join(dir, "signing.key")
	key, err := httpapi.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	token, err := httpapi.Sign(key, httpapi.Claims{Role: httpapi.RoleAdmin, Subject: "replicas-test", Expiry: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	replicas := make([]*proc, replicaCount)
	urls := make([]string, replicaCount)
	startReplica := func(i int) {
		args := append([]string{"serve", "--listen", strings.TrimPrefix(urls[i], "http://"), "--signing-key-file", keyFile,
			"--run-gc", "--run-notify", "--gc-interval", replicaStep.String(), "--shutdown-timeout", "5s"}, backends...)
		replicas[i] = startProc(t, fmt.Sprintf("replica%d", i), dir, bin, env, args...)
		waitHTTP(t, replicas[i], urls[i]+"/readyz")
	}
	clients := make([]*client.Client, replicaCount)
	for i := range replicaCount {
		urls[i] = fmt.Sprintf("http://127.0.0.1:%d", freePort(t))
		startReplica(i)
		clients[i] = client.New(urls[i], token, client.WithRetry(1, 0, 0))
	}
	dump := func() {
		if t.Failed() {
			for _, p := range append([]*proc{emu}, replicas...) {
				t.Log(p.tail())
			}
		}
	}
	defer dump()

	// The machine may be busy: connect patiently.
	db, err := index.Open(ctx, dbURL, index.Options{MaxConns: 2, ConnectTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pcfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	pcfg.ConnConfig.ConnectTimeout, pcfg.MaxConns = 30*time.Second, 2
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()

	// The clock: each step waits until a replica's GC has run at its time.
	var (
		clockMu sync.Mutex
		clockAt = emulatorNow(t, emuURL)
		start   = clockAt
		steps   int
	)
	now := func() time.Time {
		clockMu.Lock()
		defer clockMu.Unlock()
		return clockAt
	}
	step := func() {
		// The emulator's clock jumps at the start of the advance, before
		// its lifecycle sweep: a pass may begin during the sweep, after
		// moved but before the advance's answer.
		moved := now().Add(replicaStep)
		at := emulatorClockAdvance(t, emuURL, replicaStep)
		clockMu.Lock()
		clockAt, steps = at, steps+1
		clockMu.Unlock()
		testutil.WaitFor(t, 30*time.Second, "a GC pass at the new time", func() bool {
			last, found, _, _, err := db.PassHistory(ctx)
			return err == nil && found && !last.StartedAt.Before(moved)
		})
	}

	canvases := []client.CanvasID{"7d3f5a1c-0000-4000-8000-0000000000a1", "7d3f5a1c-0000-4000-8000-0000000000a2",
		"7d3f5a1c-0000-4000-8000-0000000000a3", "7d3f5a1c-0000-4000-8000-0000000000a4"}
	total := int64(replicaWorkers * replicaOps)
	killAt, restartAt := make(chan struct{}), make(chan struct{})
	var killOnce, restartOnce sync.Once
	l := &loader{
		cfg:     loadConfig{canvases: canvases, tlids: []client.TLID{1, 2, 3, 4}, workers: replicaWorkers, ops: replicaOps, seed: 42},
		clients: clients, now: now, step: replicaStep,
		progress: func(done int64) {
			if done >= total/3 {
				killOnce.Do(func() { close(killAt) })
			}
			if done >= 2*total/3 {
				restartOnce.Do(func() { close(restartAt) })
			}
		},
	}
	loadDone := make(chan error, 1)
	go func() { loadDone <- l.run(ctx) }()
	// Kill, restart and the load's end are taken in that order, whatever
	// order they happen in: each channel is armed by the one before.
	var (
		kills    int
		killedAt time.Time
		restart  <-chan struct{}
		done     <-chan error
		kill     = killAt
	)
	for loading := true; loading; {
		early := loadDone // until the restart arms done, the load's end is a failure
		if done != nil {
			early = nil
		}
		var tick <-chan time.Time
		if steps < replicaLoadMax {
			c := make(chan time.Time, 1)
			c <- time.Time{}
			tick = c // step the clock while the load runs, up to replicaLoadMax steps
		}
		select {
		case <-kill:
			kill, restart = nil, restartAt
			replicas[1].kill()
			killedAt, kills = time.Now(), kills+1
		case <-restart:
			restart, done = nil, loadDone
			startReplica(1)
		case err := <-done:
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			loading = false
		case err := <-early:
			t.Fatalf("the load ended before the kill and restart it was to span (kills %d): %v", kills, err)
		case <-tick:
			step()
		}
	}
	loadSteps := steps
	for now().Sub(start) < replicaDays*24*time.Hour {
		step()
	}
	end := now()

	// Notifications: every index row's object exists, without any read
	// having healed it; reconcile then finds nothing. The official
	// emulator goes on handing a share of new messages to the stream of
	// the killed replica, where each waits out that stream's ack deadline
	// (10 minutes) — real Pub/Sub sends nothing to a closed stream. Seeking
	// the subscription to before the kill marks what is outstanding
	// unacknowledged again, as the end of that deadline would: what the
	// live replicas hold in flight comes back a second time, which the
	// consumers must shrug off.
	gcs := bucketClient(t, emuURL)
	ps := pubsubClient(t, psAddr, project)
	var (
		objects  map[string]int64
		stale    []string
		lastSeek time.Time
		seeks    int
	)
	if !poll(time.Minute, func() bool {
		objects = listObjects(t, gcs, bucket)
		if stale = rowsWithoutObject(t, pool, objects); len(stale) == 0 {
			return true
		}
		if time.Since(lastSeek) > 5*time.Second {
			_, err := ps.SubscriptionAdminClient.Seek(ctx, &pubsubpb.SeekRequest{
				Subscription: "projects/" + project + "/subscriptions/" + sub,
				Target:       &pubsubpb.SeekRequest_Time{Time: timestamppb.New(killedAt.Add(-time.Minute))},
			})
			if err != nil {
				t.Fatalf("seek: %v", err)
			}
			lastSeek, seeks = time.Now(), seeks+1
		}
		return false
	}) {
		var seen []string
		for _, r := range stale[:min(len(stale), 10)] {
			seen = append(seen, r+" notified: "+strings.Join(audit.about(strings.Split(r, "#")[0]), ", "))
		}
		for i, u := range urls {
			seen = append(seen, fmt.Sprintf("replica %d: %s", i, notifyMetrics(u)))
		}
		d, o := audit.counts()
		t.Fatalf("a minute after the last step, %d index rows of deleted objects remain (notifications not applied; %d deletions, %d overwrites notified):\n%s",
			len(stale), d, o, strings.Join(seen, "\n"))
	}
	out := runProc(t, bin, env, "reconcile", "--database-url", dbURL, "--gcs-endpoint", emuURL, "--bucket", bucket)
	if !strings.Contains(out, "objects gone: 0 (rows removed: 0)") {
		t.Errorf("reconcile found rows the notifications did not remove:\n%s", out)
	}
	if rows := rowsWithoutObject(t, pool, listObjects(t, gcs, bucket)); len(rows) > 0 {
		t.Errorf("after reconcile, index rows of deleted objects: %v", rows)
	}

	// Every object that is gone had its deletion notification.
	var gone []string
	for _, m := range l.traces {
		if k := traceKey(m); m.acked {
			if _, ok := objects[k]; !ok {
				gone = append(gone, k)
			}
		}
	}
	testutil.WaitFor(t, time.Minute, "every deletion seen by the audit subscription", func() bool { return audit.deleted(gone) == len(gone) })

	// The model: keepers and held traces live, the rest is gone.
	explain := explainer(t, pool, gcs, bucket, l.traces, objects, rec.patches())
	live, dead, listsChecked := checkModel(t, l.traces, end, objects, clients, explain)

	// No object renewed twice within one GC interval.
	renewals, renewedObjects, failedPatches := checkRenewals(t, rec.patches())
	if renewals == 0 {
		t.Error("no renewals: GC never kept a keeper")
	}
	if live == 0 || dead == 0 || listsChecked == 0 {
		t.Errorf("the model checked too little: %d must live, %d must be gone, %d lists", live, dead, listsChecked)
	}
	deletes, overwrites := audit.counts()
	t.Logf("replicas: %d; acknowledged saves %d (answers lost: %d saves, %d other operations; %d failovers); replaces %d, layers %d, holds %d, releases %d",
		replicaCount, l.stats.savesAcked.Load(), l.stats.savesLost.Load(), l.stats.lost.Load(), l.stats.failovers.Load(),
		l.stats.replaces.Load(), l.stats.layers.Load(), l.stats.holds.Load(), l.stats.releases.Load())
	t.Logf("kills: %d (SIGKILL at 1/3 of the load, restart at 2/3); clock advanced %s in %d steps of %s (%d during the load)",
		kills, days.Format(end.Sub(start).Round(time.Hour)), steps, replicaStep, loadSteps)
	t.Logf("notifications: seeks of the subscription after the kill: %d", seeks)
	t.Logf("renewals: %d customTime PATCHes on %d objects (%d PATCHes refused); notifications: %d deletions, %d overwrites; verdicts: %d must live, %d must be gone, %d lists compared",
		renewals, renewedObjects, failedPatches, deletes, overwrites, live, dead, listsChecked)
}
