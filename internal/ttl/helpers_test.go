package ttl

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// The adapter must keep fitting the interfaces ttl declares.
var (
	_ renewer     = (*objstore.GCS)(nil)
	_ bucketAdmin = (*objstore.GCS)(nil)
)

// env is one test's PostgreSQL index and emulator bucket.
type env struct {
	db   *index.DB
	raw  *pgxpool.Pool // for what no index method does (marking a trace held)
	emu  *testutil.Emu
	gcs  *objstore.GCS
	mu   sync.Mutex
	seq  int
	keys map[traces.TraceID][]string // every object of every saved trace
}

func newEnv(t *testing.T, step time.Duration) *env {
	t.Helper()
	url := testutil.PG(t)
	db, err := index.Open(t.Context(), url, index.Options{MaxConns: 16})
	if err != nil {
		t.Fatalf("open index: %v", err)
	}
	t.Cleanup(db.Close)
	raw, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatalf("open pool: %v", err)
	}
	t.Cleanup(raw.Close)
	emu := testutil.EmulatorWithOptions(t, emulator.Options{Step: step})
	return &env{db: db, raw: raw, emu: emu, gcs: objstore.New(emu.Client, emu.Bucket), keys: map[traces.TraceID][]string{}}
}

func (e *env) now() time.Time { return e.emu.E.Now() }

// save stores a trace the way tracestore.Service does (object with customTime =
// now, then its layers, then the index rows) and returns its record.
func (e *env) save(t *testing.T, c traces.CanvasID, layers int, root traces.TLID, tlids ...traces.TLID) traces.Record {
	t.Helper()
	ctx := t.Context()
	now := e.now().Truncate(time.Second)
	e.mu.Lock()
	e.seq++
	id := traces.NewTraceID(now.Add(time.Duration(e.seq) * time.Millisecond)) // strictly increasing
	e.mu.Unlock()
	key := traces.TraceKey(c, id)
	info, err := e.gcs.Create(ctx, key, []byte("{}"), traces.NewObject{ContentType: "application/json", CustomTime: now})
	if err != nil {
		t.Fatalf("create %s: %v", key, err)
	}
	keys := []string{key}
	for n := 1; n <= layers; n++ {
		lk := traces.LayerKey(c, id, n)
		if _, err := e.gcs.Create(ctx, lk, []byte("{}"), traces.NewObject{ContentType: "application/json", CustomTime: now}); err != nil {
			t.Fatalf("create %s: %v", lk, err)
		}
		keys = append(keys, lk)
	}
	r := traces.Record{Canvas: c, ID: id, RootTLID: root, TLIDs: append([]traces.TLID{root}, tlids...),
		Timestamp: now, Generation: info.Generation, CustomTime: now, Layers: layers}
	if _, err := e.db.PutTrace(ctx, r, now); err != nil {
		t.Fatalf("index %s: %v", key, err)
	}
	e.mu.Lock()
	e.keys[id] = keys
	e.mu.Unlock()
	return r
}

// hold marks a trace held in the index and places a temporary hold on its
// objects, as the holds service does.
func (e *env) hold(t *testing.T, r traces.Record) {
	t.Helper()
	if _, err := e.raw.Exec(t.Context(), `UPDATE traces SET held_at = $3 WHERE canvas_id = $1 AND trace_id = $2`,
		[16]byte(r.Canvas), [16]byte(r.ID), e.now()); err != nil {
		t.Fatalf("hold %s: %v", r.ID, err)
	}
	for _, k := range e.keys[r.ID] {
		if _, err := e.gcs.SetTemporaryHold(t.Context(), k, true, time.Time{}); err != nil {
			t.Fatalf("hold %s: %v", k, err)
		}
	}
}

// advance moves the emulator's clock (and runs its hooks and lifecycle).
func (e *env) advance(t *testing.T, d time.Duration) emulator.Summary {
	t.Helper()
	s, err := e.emu.E.Advance(t.Context(), d)
	if err != nil {
		t.Fatalf("advance %s: %v", d, err)
	}
	return s
}

// bucketKeys lists every object name in the bucket.
func (e *env) bucketKeys(t *testing.T) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	for o, err := range e.gcs.Objects(t.Context(), "") {
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		out[o.Key] = o.CustomTime
	}
	return out
}

func (e *env) newGC(t testing.TB, r renewer, p Policy, o Options) *GC {
	t.Helper()
	if o.Backoff == 0 {
		o.Backoff = time.Millisecond
	}
	g, err := New(r, e.db, p, e.now, nil, nil, o)
	if err != nil {
		t.Fatalf("new gc: %v", err)
	}
	return g
}

// counting wraps a renewer and counts the customTime PATCHes that
// succeeded, per object.
type counting struct {
	renewer
	mu sync.Mutex
	n  map[string]int
}

func newCounting(r renewer) *counting { return &counting{renewer: r, n: map[string]int{}} }

func (c *counting) SetCustomTime(ctx context.Context, key string, t time.Time, ifMeta int64) (traces.ObjectInfo, error) {
	info, err := c.renewer.SetCustomTime(ctx, key, t, ifMeta)
	if err == nil {
		c.mu.Lock()
		c.n[key]++
		c.mu.Unlock()
	}
	return info, err
}

func (c *counting) counts() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.n)
}

// memStore is an in-memory renewer with GCS's customTime rules (forward
// only, metageneration bumped per PATCH) and optional faults, for tests that
// need no bucket and for the million-row benchmark.
type memStore struct {
	mu      sync.Mutex
	objs    map[string]traces.ObjectInfo
	patches int
	fault   func(key string, call int) error // call counts this key's PATCHes, from 1
	calls   map[string]int
}

var errBackdate = errors.New("400: customTime cannot be moved backwards")

func newMemStore() *memStore {
	return &memStore{objs: map[string]traces.ObjectInfo{}, calls: map[string]int{}}
}

func (m *memStore) put(key string, ct time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.objs[key] = traces.ObjectInfo{Key: key, Generation: 1, Metageneration: 1, CustomTime: ct.UTC().Truncate(time.Second)}
}

func (m *memStore) SetCustomTime(_ context.Context, key string, t time.Time, ifMeta int64) (traces.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls[key]++
	if m.fault != nil {
		if err := m.fault(key, m.calls[key]); err != nil {
			return traces.ObjectInfo{}, err
		}
	}
	o, ok := m.objs[key]
	switch {
	case !ok:
		return traces.ObjectInfo{}, fmt.Errorf("set custom time %s: %w", key, traces.ErrNotFound)
	case ifMeta != 0 && ifMeta != o.Metageneration:
		return traces.ObjectInfo{}, fmt.Errorf("set custom time %s: %w", key, traces.ErrPreconditionFailed)
	case t.Truncate(time.Second).Before(o.CustomTime):
		return traces.ObjectInfo{}, fmt.Errorf("set custom time %s: %w", key, errBackdate)
	}
	o.CustomTime = t.UTC().Truncate(time.Second)
	o.Metageneration++
	m.objs[key] = o
	m.patches++
	return o, nil
}

func (m *memStore) Stat(_ context.Context, key string) (traces.ObjectInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return traces.ObjectInfo{}, fmt.Errorf("stat %s: %w", key, traces.ErrNotFound)
	}
	return o, nil
}

func canvas(b byte) traces.CanvasID {
	var c traces.CanvasID
	c[0], c[6], c[8], c[15] = b, 0x40, 0x80, b
	return c
}

func sortedKeys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

// setupDefaultBucket sets up e's bucket for the default policy (its
// lifecycle rule and policy record) and returns that policy.
func (e *env) setupDefaultBucket(t *testing.T) Policy {
	t.Helper()
	p := DefaultPolicy()
	if _, err := SetupBucket(t.Context(), e.gcs, p, BucketOptions{}, false); err != nil {
		t.Fatalf("setup bucket: %v", err)
	}
	return p
}
