package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/storage"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/api/iterator"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/testutil"
)

// The checks of TestReplicas and the helpers that read the bucket, the
// index and the notification topic for them.

// checkModel holds what the replicas serve to the model's verdicts at
// emulator time end: a trace that must live is readable (with its root)
// and in the bucket, one that must be gone is neither; the latest traces
// of every toplevel without uncertainty are exactly the model's; held
// traces are in their canvas's holds. It returns how many of each it
// checked.
func checkModel(t *testing.T, all []*modelTrace, end time.Time, objects map[string]int64, clients []*client.Client, explain func(*modelTrace) string) (live, dead, listsChecked int) {
	t.Helper()
	ctx := t.Context()
	verdicts, lists := judge(all, end, 7*24*time.Hour)
	for m, v := range verdicts {
		_, inBucket := objects[traceKey(m)]
		got, _, err := clients[0].Get(ctx, m.canvas, m.id)
		switch v {
		case mustLive:
			live++
			if err != nil || !inBucket {
				t.Errorf("trace %s/%s (held %v) must live: get %v, in bucket %v", m.canvas, m.id, m.held == yes, err, inBucket)
			} else if m.rootSure && got.RootTLID != m.root {
				t.Errorf("trace %s: root %d, want %d", m.id, got.RootTLID, m.root)
			}
		case mustGo:
			dead++
			if !errors.Is(err, client.ErrNotFound) || inBucket {
				t.Errorf("trace %s/%s must be gone (neither keeper nor held, saved before %s): get %v, in bucket %v\n%s", m.canvas, m.id, m.setAt, err, inBucket, explain(m))
			}
		}
	}
	for c, byTLID := range lists {
		for _, tl := range sortedTLIDs(byTLID) {
			want := byTLID[tl]
			got, err := clients[2].Recent(ctx, c, tl, keep)
			if err != nil {
				t.Fatal(err)
			}
			var ids []client.TraceID
			for _, s := range got {
				ids = append(ids, s.ID)
			}
			if !slices.Equal(ids, want) {
				t.Errorf("latest of %s/%d:\n got %v\nwant %v", c, tl, ids, want)
			}
			listsChecked++
		}
		holds, err := clients[1].Holds(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		held := map[client.TraceID]bool{}
		for _, h := range holds {
			held[h.ID] = true
		}
		for _, m := range all {
			if m.canvas == c && m.acked && m.held == yes && !held[m.id] {
				t.Errorf("held trace %s/%s is not in the canvas's holds", c, m.id)
			}
		}
	}

	return live, dead, listsChecked
}

// explainer returns what the bucket, the index, the renewals and the model
// say of a trace and of the traces newer than it on its toplevels: what a
// failed verdict needs to be understood after the run is gone.
func explainer(t *testing.T, pool *pgxpool.Pool, gcs *storage.Client, bucket string, all []*modelTrace, objects map[string]int64, patches []patch) func(*modelTrace) string {
	return func(m *modelTrace) string {
		ctx := t.Context()
		var b strings.Builder
		if a, err := gcs.Bucket(bucket).Object(traceKey(m)).Attrs(ctx); err != nil {
			fmt.Fprintf(&b, "  object: %v\n", err)
		} else {
			fmt.Fprintf(&b, "  object: generation %d metageneration %d customTime %s temporaryHold %v eventBasedHold %v\n",
				a.Generation, a.Metageneration, a.CustomTime, a.TemporaryHold, a.EventBasedHold)
		}
		for _, p := range patches {
			if p.Object == traceKey(m) {
				fmt.Fprintf(&b, "  patch: customTime %s hold %v status %d\n", p.CustomTime, p.Hold, p.Status)
			}
		}
		fmt.Fprintf(&b, "  model: sure %v maybe %v held %v uncertain %v\n", slices.Sorted(maps.Keys(m.sure)), slices.Sorted(maps.Keys(m.maybe)), m.held, m.uncertain)
		var (
			gen     int64
			tlids   []int64
			ct      time.Time
			layers  int
			heldAt  *time.Time
			pending []time.Time
		)
		err := pool.QueryRow(ctx, `SELECT generation, tlids, custom_time, layers, held_at, pending FROM traces WHERE canvas_id = $1 AND trace_id = $2`,
			string(m.canvas), string(m.id)).Scan(&gen, &tlids, &ct, &layers, &heldAt, &pending)
		fmt.Fprintf(&b, "  index: generation %d tlids %v custom_time %s layers %d held_at %v pending %v (err %v)\n", gen, tlids, ct, layers, heldAt, pending, err)
		tls := map[client.TLID]bool{}
		for _, tl := range tlids {
			tls[client.TLID(tl)] = true
		}
		maps.Copy(tls, m.sure)
		maps.Copy(tls, m.maybe)
		for _, tl := range slices.Sorted(maps.Keys(tls)) {
			var renewAfter time.Time
			var rev int64
			var deletedAt *time.Time
			err := pool.QueryRow(ctx, `SELECT renew_after, rev, deleted_at FROM toplevels WHERE canvas_id = $1 AND tlid = $2`,
				string(m.canvas), int64(tl)).Scan(&renewAfter, &rev, &deletedAt)
			fmt.Fprintf(&b, "  toplevel %d: renew_after %s rev %d deleted_at %v (err %v)\n", tl, renewAfter, rev, deletedAt, err)
			indexed := map[string]bool{}
			rows, err := pool.Query(ctx, `SELECT trace_id::text FROM trace_tlids WHERE canvas_id = $1 AND tlid = $2 AND trace_id > $3 ORDER BY trace_id`,
				string(m.canvas), int64(tl), string(m.id))
			if err == nil {
				for rows.Next() {
					var id string
					if rows.Scan(&id) == nil {
						indexed[id] = true
					}
				}
				rows.Close()
			}
			fmt.Fprintf(&b, "    newer rows in the index: %d\n", len(indexed))
			shown := 0
			for _, o := range all {
				if o.canvas != m.canvas || o.id <= m.id || !(o.touches(tl) || indexed[string(o.id)]) {
					continue
				}
				if shown++; shown > 20 {
					fmt.Fprintf(&b, "    …\n")
					break
				}
				_, inBucket := objects[traceKey(o)]
				fmt.Fprintf(&b, "    newer %s: sure %v maybe %v acked %v uncertain %v held %v in bucket %v indexed %v\n",
					o.id, o.sure[tl], o.maybe[tl], o.acked, o.uncertain, o.held, inBucket, indexed[string(o.id)])
			}
		}
		return b.String()
	}
}

// checkRenewals fails the test for an object whose customTime was renewed
// twice within one GC interval (across replicas), and counts the
// renewals, the objects renewed and the PATCHes refused.
func checkRenewals(t *testing.T, patches []patch) (renewals, objects, failed int) {
	t.Helper()
	byObject := map[string][]time.Time{}
	for _, p := range patches {
		switch {
		case p.Status/100 != 2:
			failed++
		case !p.Hold && !p.CustomTime.IsZero():
			renewals++
			byObject[p.Object] = append(byObject[p.Object], p.CustomTime)
		}
	}
	for obj, ts := range byObject {
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		for i := 1; i < len(ts); i++ {
			if ts[i].Sub(ts[i-1]) < replicaStep {
				t.Errorf("%s renewed twice within one GC interval: to %s and to %s", obj, ts[i-1], ts[i])
			}
		}
	}
	return renewals, len(byObject), failed
}

// notifyMetrics returns the tracegw_notify_ counters of the gateway at url.
func notifyMetrics(url string) string {
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "tracegw_notify_") && !strings.Contains(line, "_bucket{") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "; ")
}

// poll calls cond every 50 ms until it returns true (then poll does too)
// or timeout passes (then poll returns false).
func poll(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		<-tick.C
	}
	return true
}

// fastDir is a temporary directory on tmpfs when there is one: the
// emulator fsyncs every write.
func fastDir(t *testing.T) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		d, err := os.MkdirTemp("/dev/shm", "tracegw-replicas-")
		if err == nil {
			t.Cleanup(func() { os.RemoveAll(d) })
			return d
		}
	}
	return t.TempDir()
}

func traceKey(m *modelTrace) string { return string(m.canvas) + "/traces/" + string(m.id) }

func emulatorNow(t *testing.T, base string) time.Time {
	t.Helper()
	c, ok := newEmulatorClock(t.Context(), base, nil)
	if !ok {
		t.Fatalf("no emulator clock at %s", base)
	}
	return c.Now()
}

func bucketClient(t *testing.T, url string) *storage.Client {
	t.Helper()
	c, err := testutil.StorageClient(t, url)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// listObjects returns every trace object's name and generation.
func listObjects(t *testing.T, c *storage.Client, bucket string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	it := c.Bucket(bucket).Objects(t.Context(), nil)
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(a.Name, "/traces/") {
			out[a.Name] = a.Generation
		}
	}
}

// rowsWithoutObject returns the index rows whose object is not in objects.
func rowsWithoutObject(t *testing.T, pool *pgxpool.Pool, objects map[string]int64) []string {
	t.Helper()
	rows, err := pool.Query(t.Context(), `SELECT canvas_id::text, trace_id::text, generation FROM traces`)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var c, id string
		var gen int64
		if err := rows.Scan(&c, &id, &gen); err != nil {
			t.Fatal(err)
		}
		if _, ok := objects[c+"/traces/"+id]; !ok {
			out = append(out, fmt.Sprintf("%s/traces/%s#%d", c, id, gen))
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// auditLog is a second subscription on the notification topic: it sees
// every notification GCS (the emulator) publishes.
type auditLog struct {
	mu     sync.Mutex
	events map[string]bool // eventType objectId#generation
	dels   map[string]bool // objectId of OBJECT_DELETEs without overwrittenByGeneration
	over   int
}

var auditSeq int

// pubsubClient is a client of the Pub/Sub emulator at addr, closed when
// the test ends.
func pubsubClient(t *testing.T, addr, project string) *pubsub.Client {
	t.Helper()
	ps, err := pubsub.NewClient(t.Context(), project, option.WithEndpoint(addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ps.Close() })
	return ps
}

func startAudit(t *testing.T, addr, project, topic string) *auditLog {
	t.Helper()
	ctx := t.Context()
	ps := pubsubClient(t, addr, project)
	auditSeq++
	name := fmt.Sprintf("audit-%s-%d", topic, auditSeq)
	if _, err := ps.SubscriptionAdminClient.CreateSubscription(ctx, &pubsubpb.Subscription{
		Name: "projects/" + project + "/subscriptions/" + name, Topic: "projects/" + project + "/topics/" + topic, AckDeadlineSeconds: 60,
	}); err != nil {
		t.Fatal(err)
	}
	a := &auditLog{events: map[string]bool{}, dels: map[string]bool{}}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = ps.Subscriber(name).Receive(rctx, func(_ context.Context, m *pubsub.Message) {
			at := m.Attributes
			a.mu.Lock()
			k := at["eventType"] + " " + at["objectId"] + "#" + at["objectGeneration"]
			if !a.events[k] {
				a.events[k] = true
				if at["eventType"] == "OBJECT_DELETE" {
					if at["overwrittenByGeneration"] != "" {
						a.over++
					} else {
						a.dels[at["objectId"]] = true
					}
				}
			}
			a.mu.Unlock()
			m.Ack()
		})
	}()
	t.Cleanup(func() { cancel(); <-done })
	return a
}

// deleted counts the keys whose deletion was notified.
func (a *auditLog) deleted(keys []string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, k := range keys {
		if a.dels[k] {
			n++
		}
	}
	return n
}

// about lists the notifications seen about object.
func (a *auditLog) about(object string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for k := range a.events {
		if strings.Contains(k, " "+object+"#") {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// counts returns the distinct deletions and overwrites notified.
func (a *auditLog) counts() (deletes, overwrites int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.dels), a.over
}
