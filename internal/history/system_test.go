package history

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/jackc/pgx/v5"
	"github.com/klauspost/compress/gzip"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/holds"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/notify"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/ttl"
	"github.com/tracegw/tracegw/schema"
	"github.com/tracegw/tracegw/testutil"
)

// This file wires the whole system in process, the way `tracegw dev` does,
// plus the fault switches and the chaos relay. The calls the history makes
// into the services are in driver_test.go.

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

	svc      *traces.Service
	holds    *holds.Service
	jobs     *traces.Jobs
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
	s.svc = traces.NewService(s.objects, s.ix, now, nil)
	s.holds = holds.New(s.objects, s.ix, now, nil)
	s.jobs = traces.NewJobs(s.objects, s.db, now, nil)
	s.jobs.Holds = s.holds
	if s.stepGC, err = ttl.New(s.gcs, s.db, p, now, nil, nil, gcOptions()); err != nil {
		t.Fatalf("gc: %v", err)
	}
	s.consumer, err = notify.New(client.Subscriber(notifySub), s.db, s.gcs, notify.Options{
		Bucket: emu.Bucket, MaxWait: 5 * time.Millisecond, Now: now,
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

func gcOptions() ttl.Options {
	return ttl.Options{Backoff: time.Millisecond, PatchesPerSecond: -1}
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
	rec := httptest.NewRecorder()
	s.emu.E.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/_emulator/faults", nil))
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

// faultSwitch counts armed faults by name.
type faultSwitch struct {
	mu   sync.Mutex
	arms map[string]int
}

func (f *faultSwitch) arm(name string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arms[name] += n
}

func (f *faultSwitch) take(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.arms[name] > 0 {
		f.arms[name]--
		return true
	}
	return false
}

func (f *faultSwitch) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.arms)
}

func injected(what string) error {
	return fmt.Errorf("%s: injected fault: %w", what, traces.ErrUnavailable)
}

// flakyIndex is the real index whose writes can fail: "db:METHOD:before"
// fails the call without running it (the database went away between the
// object write and the index write), "db:METHOD:after" runs it and then
// fails (the commit happened, the answer was lost).
type flakyIndex struct {
	*index.DB
	f *faultSwitch
}

func (x *flakyIndex) before(m string) error {
	if x.f.take("db:" + m + ":before") {
		return injected(m)
	}
	return nil
}

func (x *flakyIndex) after(m string, err error) error {
	if err == nil && x.f.take("db:"+m+":after") {
		return injected(m)
	}
	return err
}

func (x *flakyIndex) PutTrace(ctx context.Context, r traces.Record) (bool, error) {
	if err := x.before("PutTrace"); err != nil {
		return false, err
	}
	ok, err := x.DB.PutTrace(ctx, r)
	return ok, x.after("PutTrace", err)
}

func (x *flakyIndex) ReplaceTrace(ctx context.Context, r traces.Record) (bool, int, error) {
	if err := x.before("ReplaceTrace"); err != nil {
		return false, 0, err
	}
	ok, n, err := x.DB.ReplaceTrace(ctx, r)
	return ok, n, x.after("ReplaceTrace", err)
}

func (x *flakyIndex) AddLayer(ctx context.Context, c traces.CanvasID, id traces.TraceID, gen int64, n int, tlids []traces.TLID) (bool, error) {
	if err := x.before("AddLayer"); err != nil {
		return false, err
	}
	held, err := x.DB.AddLayer(ctx, c, id, gen, n, tlids)
	return held, x.after("AddLayer", err)
}

func (x *flakyIndex) ForgetToplevel(ctx context.Context, c traces.CanvasID, tlid traces.TLID, at time.Time) error {
	if err := x.before("ForgetToplevel"); err != nil {
		return err
	}
	return x.after("ForgetToplevel", x.DB.ForgetToplevel(ctx, c, tlid, at))
}

func (x *flakyIndex) SetHold(ctx context.Context, c traces.CanvasID, id traces.TraceID, reason string, at time.Time) (index.Hold, error) {
	if err := x.before("SetHold"); err != nil {
		return index.Hold{}, err
	}
	h, err := x.DB.SetHold(ctx, c, id, reason, at)
	return h, x.after("SetHold", err)
}

func (x *flakyIndex) ClearHold(ctx context.Context, c traces.CanvasID, id traces.TraceID, ct time.Time) error {
	if err := x.before("ClearHold"); err != nil {
		return err
	}
	return x.after("ClearHold", x.DB.ClearHold(ctx, c, id, ct))
}

// flakyObjects is the real bucket adapter whose writes can lose their
// answer: "lost:METHOD" runs the call and then fails it, as when GCS
// applied a request whose response never arrived (the emulator's own
// injected 503s always come before any effect).
type flakyObjects struct {
	*objstore.GCS
	f *faultSwitch
}

func (o *flakyObjects) lost(m string, err error) error {
	if err == nil && o.f.take("lost:"+m) {
		return injected(m + " (response lost)")
	}
	return err
}

func (o *flakyObjects) Create(ctx context.Context, key string, body []byte, n traces.NewObject) (traces.ObjectInfo, error) {
	info, err := o.GCS.Create(ctx, key, body, n)
	return info, o.lost("Create", err)
}

func (o *flakyObjects) Replace(ctx context.Context, key string, body []byte, n traces.NewObject, gen int64) (traces.ObjectInfo, error) {
	info, err := o.GCS.Replace(ctx, key, body, n, gen)
	return info, o.lost("Replace", err)
}

func (o *flakyObjects) SetTemporaryHold(ctx context.Context, key string, held bool, ct time.Time) (traces.ObjectInfo, error) {
	info, err := o.GCS.SetTemporaryHold(ctx, key, held, ct)
	return info, o.lost("SetTemporaryHold", err)
}

func (o *flakyObjects) SetCustomTime(ctx context.Context, key string, t time.Time, ifMeta int64) (traces.ObjectInfo, error) {
	info, err := o.GCS.SetCustomTime(ctx, key, t, ifMeta)
	return info, o.lost("SetCustomTime", err)
}

func (o *flakyObjects) Delete(ctx context.Context, key string, gen int64) error {
	return o.lost("Delete", o.GCS.Delete(ctx, key, gen))
}

// killingRenewer is a GC's bucket adapter that cancels the pass after its
// nth customTime PATCH, as if the process died mid-pass.
type killingRenewer struct {
	*flakyObjects
	n      atomic.Int64
	after  int64
	cancel context.CancelFunc
}

func (k *killingRenewer) SetCustomTime(ctx context.Context, key string, t time.Time, ifMeta int64) (traces.ObjectInfo, error) {
	info, err := k.flakyObjects.SetCustomTime(ctx, key, t, ifMeta)
	if k.after > 0 && k.n.Add(1) == k.after {
		k.cancel()
	}
	return info, err
}

// relay stands between the emulator's topic and the consumer's: it acks
// what GCS published and republishes it later, in seeded order, some
// copies late (by up to maxDelay releases, which may span clock steps and
// retention periods), some twice.
type relay struct {
	pub      *pubsub.Publisher
	late     float64
	dup      float64
	maxDelay int

	received, republished atomic.Int64

	mu       sync.Mutex
	rng      *rand.Rand
	incoming []relayed
	pending  []relayed
	ticks    int
}

type relayed struct {
	data  []byte
	attrs map[string]string
	due   int
}

func (r *relay) run(ctx context.Context, sub *pubsub.Subscriber) error {
	return sub.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		r.mu.Lock()
		r.incoming = append(r.incoming, relayed{data: slices.Clone(m.Data), attrs: m.Attributes})
		r.mu.Unlock()
		r.received.Add(1)
		m.Ack()
	})
}

func (m relayed) sortKey() string {
	return m.attrs["objectId"] + "\x00" + m.attrs["objectGeneration"] + "\x00" + m.attrs["eventType"] + "\x00" + m.attrs["overwrittenByGeneration"]
}

// release gives every message that arrived since the last release its
// delay (and maybe a duplicate), then republishes, in shuffled order, what
// is due (everything if all).
func (r *relay) release(ctx context.Context, all bool) error {
	r.mu.Lock()
	in := r.incoming
	r.incoming = nil
	// Arrival order varies from run to run; the seeded choices must not.
	slices.SortStableFunc(in, func(a, b relayed) int { return cmpStrings(a.sortKey(), b.sortKey()) })
	for _, m := range in {
		copies := 1
		if r.rng.Float64() < r.dup {
			copies = 2
		}
		for range copies {
			m.due = r.ticks
			if r.rng.Float64() < r.late {
				m.due += 1 + r.rng.IntN(r.maxDelay)
			}
			r.pending = append(r.pending, m)
		}
	}
	var out, keep []relayed
	for _, m := range r.pending {
		if all || m.due <= r.ticks {
			out = append(out, m)
		} else {
			keep = append(keep, m)
		}
	}
	r.pending = keep
	r.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	r.ticks++
	r.mu.Unlock()
	for _, m := range out {
		if _, err := r.pub.Publish(ctx, &pubsub.Message{Data: m.data, Attributes: m.attrs}).Get(ctx); err != nil {
			return fmt.Errorf("relay: %w", err)
		}
		r.republished.Add(1)
	}
	return nil
}

func cmpStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// held reports how many messages the relay is holding back.
func (r *relay) held() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) + len(r.incoming)
}

// content is what a snapshot keeps of one object generation's bytes.
type content struct {
	names  []traces.TLID
	listed []traces.TLID
	base   int64
	exprs  []uint64
}

// snapshot lists the bucket and reads the index's trace rows. Object
// contents are read once per generation (cache). It must run while nothing
// else does.
func (s *system) snapshot(ctx context.Context, m *Model, cache map[string]content) (*Snapshot, error) {
	canvas := map[traces.CanvasID]int{}
	for i, c := range m.Canvases {
		canvas[c] = i
	}
	snap := &Snapshot{At: s.emu.E.Now(), Objects: map[string]Object{}, Rows: map[string]int64{}}
	for info, err := range s.gcs.Objects(ctx, "") {
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		k, err := traces.ParseKey(info.Key)
		if err != nil || (k.Kind != traces.KindTrace && k.Kind != traces.KindLayer) {
			continue
		}
		ci, ok := canvas[k.Canvas]
		if !ok {
			continue
		}
		ck := info.Key + "#" + strconv.FormatInt(info.Generation, 10)
		c, ok := cache[ck]
		if !ok {
			raw, oi, err := s.gcs.Open(ctx, info.Key)
			if errors.Is(err, traces.ErrNotFound) {
				continue // deleted since the listing (a layer the consumer removed)
			}
			if err != nil {
				return nil, fmt.Errorf("snapshot: %w", err)
			}
			if oi.Generation != info.Generation {
				return nil, fmt.Errorf("snapshot: %s changed while nothing ran (generation %d, then %d)", info.Key, info.Generation, oi.Generation)
			}
			if c, err = decodeContent(k.Kind, raw); err != nil {
				return nil, fmt.Errorf("snapshot: %s: %w", info.Key, err)
			}
			cache[ck] = c
		}
		snap.Objects[info.Key] = Object{
			Key: info.Key, Kind: k.Kind, Canvas: ci, Trace: k.Trace, Owner: traces.TraceKey(k.Canvas, k.Trace), Layer: k.Layer,
			Gen: info.Generation, CustomTime: info.CustomTime, Held: info.TemporaryHold,
			Names: c.names, Listed: c.listed, Base: c.base, Exprs: c.exprs,
		}
	}
	for _, c := range m.Canvases {
		rows, err := s.indexRows(ctx, c)
		if err != nil {
			return nil, fmt.Errorf("snapshot: %w", err)
		}
		for id, gen := range rows {
			snap.Rows[traces.TraceKey(c, id)] = gen
		}
	}
	return snap, nil
}

// decodeContent reads what a trace or layer object names, through the
// exported decoders: a trace object is a gzip-compressed msgpack trace
// document; a layer object the layer document plus baseGeneration.
func decodeContent(kind traces.KeyKind, raw []byte) (content, error) {
	doc := raw
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		r, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return content{}, err
		}
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(r); err != nil {
			return content{}, err
		}
		doc = buf.Bytes()
	}
	lim := traces.Limits{MaxBody: int64(len(doc))}
	var c content
	if kind == traces.KindTrace {
		t, err := traces.DecodeTrace(doc, false, lim)
		if err != nil {
			return content{}, err
		}
		c.listed = append([]traces.TLID{t.RootTLID}, t.TLIDs...)
		c.names = append(c.names, c.listed...)
		for _, fr := range t.FunctionResults {
			c.names = append(c.names, fr.TLID)
		}
	} else {
		tlids, results, err := traces.DecodeLayer(doc, false, lim)
		if err != nil {
			return content{}, err
		}
		c.names = tlids // DecodeLayer adds the results' tlids
		for _, fr := range results {
			c.exprs = append(c.exprs, fr.ExprID)
		}
		err = traces.DecodeFields(doc, false, lim, map[string]func(*traces.Reader, string) error{
			"baseGeneration": func(r *traces.Reader, f string) (err error) {
				c.base, err = r.Int(f)
				return err
			},
		})
		if err != nil {
			return content{}, err
		}
	}
	slices.Sort(c.names)
	c.names = slices.Compact(c.names)
	return c, nil
}
