package tracestore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/holds"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
)

// The regression tests of the keeper-safety review: each sequence that
// could lose (or leak) a trace, driven through the services.

// midLayer runs f while a layer object is being written: after the layer's
// number was taken, before its object exists.
type midLayer struct {
	*objstore.GCS
	f func()
}

func (m *midLayer) Create(ctx context.Context, key string, body []byte, o traces.NewObject) (traces.ObjectInfo, error) {
	if strings.Contains(key, "/layers/") && m.f != nil {
		f := m.f
		m.f = nil
		f()
	}
	return m.GCS.Create(ctx, key, body, o)
}

func (r *execRig) objectHeld(t *testing.T, key string) bool {
	t.Helper()
	info, err := r.gcs.Stat(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	return info.TemporaryHold
}

// Sequence 2: a hold racing "execute function". The hold read the layer
// count before the layer existed, the layer's index row committed unheld,
// and the hold then recorded itself: the layer stayed unheld under a held
// trace. The layer add now learns the trace's hold from its own index
// write and brings the layer to it.
func TestHoldRacingALayerAdd(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	ctx := t.Context()
	saved := r.save(t, 10)
	hs := holds.New(r.gcs, r.db, holds.Options{Now: r.now})
	objs := &midLayer{GCS: r.gcs, f: func() {
		if _, err := hs.Hold(ctx, r.c, saved.ID, "while the layer is written"); err != nil {
			t.Error(err)
		}
	}}
	svc := tracestore.New(objs, r.db, tracestore.Options{Now: r.now})
	added, err := svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(10, 1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	if !r.objectHeld(t, traces.LayerKey(r.c, saved.ID, added.N)) {
		t.Error("the layer of a trace held while the layer was written is not held")
	}
}

// Sequence 6, release side: a release racing a layer add left the layer
// held for ever (nothing would release it).
func TestReleaseRacingALayerAdd(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	ctx := t.Context()
	saved := r.save(t, 10)
	hs := holds.New(r.gcs, r.db, holds.Options{Now: r.now})
	if _, err := hs.Hold(ctx, r.c, saved.ID, ""); err != nil {
		t.Fatal(err)
	}
	objs := &midLayer{GCS: r.gcs, f: func() {
		if err := hs.Release(ctx, r.c, saved.ID); err != nil {
			t.Error(err)
		}
	}}
	svc := tracestore.New(objs, r.db, tracestore.Options{Now: r.now})
	added, err := svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(10, 1, 2)})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{traces.TraceKey(r.c, saved.ID), traces.LayerKey(r.c, saved.ID, added.N)} {
		if r.objectHeld(t, k) {
			t.Errorf("%s is still held after the release", k)
		}
	}
}

// failingReplace is the index whose replace write fails once, after the
// object was written.
type failingReplace struct {
	*index.DB
	fail atomic.Int32
}

func (f *failingReplace) ReplaceTrace(ctx context.Context, rec traces.Record, now time.Time, tok index.Token) (index.Replaced, error) {
	if f.fail.Add(-1) >= 0 {
		return index.Replaced{}, fmt.Errorf("replace trace: injected failure: %w", traces.ErrUnavailable)
	}
	return f.DB.ReplaceTrace(ctx, rec, now, tok)
}

// Sequence 5: a replace whose index write failed left the object at the new
// generation and the index at the old tlids; a retry with the same body got
// 412 (its customTime differed) and reconcile compared names only, so a
// new tlid was never listed nor kept. Now the retry recognises its own
// object by its hash, the next read heals the rows, and so does the repair
// step (for the operation's token) when nobody retries or reads.
func TestReplaceWhoseIndexWriteFails(t *testing.T) {
	t.Parallel()
	for _, heal := range []string{"retry", "read", "repair"} {
		t.Run(heal, func(t *testing.T) {
			t.Parallel()
			r := newExecRig(t)
			ctx := t.Context()
			saved := r.save(t, 10)
			ix := &failingReplace{DB: r.db}
			ix.fail.Store(1)
			svc := tracestore.New(r.gcs, ix, tracestore.Options{Now: r.now})
			body := func() *traces.Trace { return &traces.Trace{ID: saved.ID, RootTLID: 10, TLIDs: []traces.TLID{20}} }
			if _, err := svc.Replace(ctx, r.c, saved.ID, body(), saved.Generation); !errors.Is(err, traces.ErrUnavailable) {
				t.Fatalf("Replace: err %v, want the injected failure", err)
			}
			if ids := r.listed(t, 20); len(ids) != 0 {
				t.Fatalf("listed under 20 before healing: %v", ids)
			}
			if _, err := r.emu.E.Advance(ctx, time.Minute); err != nil { // the retry's customTime differs
				t.Fatal(err)
			}
			switch heal {
			case "retry":
				got, err := svc.Replace(ctx, r.c, saved.ID, body(), saved.Generation)
				if err != nil || got.Generation == saved.Generation {
					t.Fatalf("retried Replace = %+v, %v; want the new generation", got, err)
				}
			case "read":
				if _, err := svc.Get(ctx, r.c, saved.ID); err != nil {
					t.Fatal(err)
				}
			case "repair":
				if err := svc.Repair(ctx, r.c, saved.ID, time.Now().Add(time.Hour)); err != nil {
					t.Fatal(err)
				}
				if ps, _, err := r.db.Pending(ctx, -time.Hour, 10); err != nil || len(ps) != 0 {
					t.Errorf("tokens after repair: %v, %v; want none", ps, err)
				}
			}
			if ids := r.listed(t, 20); len(ids) != 1 || ids[0] != saved.ID {
				t.Errorf("listed under 20 = %v, want the replaced trace", ids)
			}
			rec, err := r.db.Get(ctx, r.c, saved.ID)
			if err != nil || rec.Generation == saved.Generation {
				t.Errorf("index generation %d (err %v), want the new one", rec.Generation, err)
			}
		})
	}
}

// Sequence 8: a trace whose function results name function F, but whose
// tlids omit F, was neither listed nor kept for F. Every tlid a trace names
// is indexed: root, tlids, each function result's, and each layer's.
func TestFunctionResultTLIDsAreIndexed(t *testing.T) {
	t.Parallel()
	r := newExecRig(t)
	ctx := t.Context()
	saved, err := r.svc.Save(ctx, r.c, &traces.Trace{RootTLID: 1, FunctionResults: []traces.FunctionResult{result(77, 1, 1)}})
	if err != nil {
		t.Fatal(err)
	}
	if ids := r.listed(t, 77); len(ids) != 1 || ids[0] != saved.ID {
		t.Errorf("listed under the function's tlid = %v, want the trace", ids)
	}
	if _, err := r.svc.Replace(ctx, r.c, saved.ID, &traces.Trace{RootTLID: 1, FunctionResults: []traces.FunctionResult{result(78, 1, 1)}}, 0); err != nil {
		t.Fatal(err)
	}
	if a, b := r.listed(t, 77), r.listed(t, 78); len(a) != 0 || len(b) != 1 {
		t.Errorf("after a replace naming function 78: listed under 77 %v, under 78 %v; want none, the trace", a, b)
	}
	if _, err := r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(79, 2, 1)}); err != nil {
		t.Fatal(err)
	}
	if err := r.svc.Repair(ctx, r.c, saved.ID, time.Now()); err != nil { // re-derives every link from the objects
		t.Fatal(err)
	}
	for _, tl := range []traces.TLID{1, 78, 79} {
		if ids := r.listed(t, tl); len(ids) != 1 {
			t.Errorf("listed under %d after repair = %v, want the trace", tl, ids)
		}
	}
}

// Sequence 9: generation G1 expires, its deletion notification is late, the
// same trace ID is saved again (G2) but the insert kept G1's rows, and the
// late notification then removed them: G2 was orphaned. A save of a newer
// generation replaces older rows, and a notification names its generation.
func TestResaveAfterExpiryThenLateNotification(t *testing.T) {
	t.Parallel()
	r := newExecRig(t)
	ctx := t.Context()
	doc := func() *traces.Trace {
		return &traces.Trace{ID: traces.NewTraceID(r.now()), RootTLID: 5, Timestamp: r.now().Truncate(time.Millisecond)}
	}
	first := doc()
	again := *first
	g1, err := r.svc.Save(ctx, r.c, first)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.gcs.Delete(ctx, traces.TraceKey(r.c, g1.ID), 0); err != nil { // expired; no notification yet
		t.Fatal(err)
	}
	again.TLIDs = []traces.TLID{6}
	g2, err := r.svc.Save(ctx, r.c, &again)
	if err != nil || !g2.Created || g2.Generation == g1.Generation {
		t.Fatalf("second Save = %+v, %v; want a new generation, created", g2, err)
	}
	if ids := r.listed(t, 6); len(ids) != 1 {
		t.Fatalf("listed under 6 = %v, want the re-saved trace", ids)
	}
	if _, err := r.db.RemoveMany(ctx, []index.Deletion{{Canvas: r.c, ID: g1.ID, Generation: g1.Generation}}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Get(ctx, r.c, g2.ID); err != nil {
		t.Errorf("the re-saved trace after G1's late notification: %v", err)
	}
}

// failingCreate fails the first layer create, as a 503 that outlived the
// client's retries.
type failingCreate struct {
	*objstore.GCS
	fail atomic.Int32
}

func (f *failingCreate) Create(ctx context.Context, key string, body []byte, o traces.NewObject) (traces.ObjectInfo, error) {
	if strings.Contains(key, "/layers/") && f.fail.Add(-1) >= 0 {
		return traces.ObjectInfo{}, fmt.Errorf("create %s: injected failure: %w", key, traces.ErrUnavailable)
	}
	return f.GCS.Create(ctx, key, body, o)
}

// Sequence 11, layers: a failed layer add left an orphan layer that later
// adds counted and reads merged. A layer's number is taken before its
// object is written, so a failed add leaves a number without an object (or
// an object that is the layer, whole), never a half-counted one.
func TestFailedLayerAddIsNotMerged(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	ctx := t.Context()
	saved := r.save(t, 10)
	objs := &failingCreate{GCS: r.gcs}
	objs.fail.Store(1)
	svc := tracestore.New(objs, r.db, tracestore.Options{Now: r.now})
	if _, err := svc.AddLayer(ctx, r.c, saved.ID, []traces.TLID{40}, []traces.FunctionResult{result(10, 1, 2)}); !errors.Is(err, traces.ErrUnavailable) {
		t.Fatalf("AddLayer: err %v, want the injected failure", err)
	}
	added, err := svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(10, 1, 3)})
	if err != nil || added.N != 2 {
		t.Fatalf("AddLayer = %+v, %v; want layer 2", added, err)
	}
	read, err := svc.Get(ctx, r.c, saved.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got := read.Trace.FunctionResults; len(got) != 1 || !slices.Equal(got[0].Value, value(3)) {
		t.Errorf("results = %v, want only layer 2's", got)
	}
	if err := svc.Repair(ctx, r.c, saved.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if ids := r.listed(t, 40); len(ids) != 0 {
		t.Errorf("listed under the failed layer's tlid after repair: %v", ids)
	}
}
