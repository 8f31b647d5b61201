package tracestore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
	"github.com/tracegw/tracegw/testutil"
)

// execRig is a Service on a real PostgreSQL index and a bucket.
type execRig struct {
	svc   *tracestore.Service
	db    *index.DB
	dbURL string
	gcs   *objstore.GCS
	now   func() time.Time
	c     traces.CanvasID
	emu   *testutil.Emu
}

// newExecRig uses the GCS emulator and its clock.
func newExecRig(t *testing.T) *execRig {
	t.Helper()
	return newExecRigIn(t, "")
}

// newExecRigIn is newExecRig with the emulator's files in dir ("": a
// temporary directory).
func newExecRigIn(t *testing.T, dir string) *execRig {
	t.Helper()
	emu := testutil.EmulatorWithOptions(t, emulator.Options{Dir: dir})
	r := newRigOn(t, objstore.New(emu.Client, emu.Bucket), emu.E.Now)
	r.emu = emu
	return r
}

// newLayerRig is newExecRig: layers sit beside their trace
// ({c}/layers/{id}/N), so the emulator stores both.
func newLayerRig(t *testing.T) *execRig {
	t.Helper()
	return newExecRig(t)
}

func newRigOn(t *testing.T, gcs *objstore.GCS, now func() time.Time) *execRig {
	t.Helper()
	url := testutil.PG(t)
	db, err := index.Open(t.Context(), url, index.Options{})
	if err != nil {
		t.Fatalf("open index: %v", err)
	}
	t.Cleanup(db.Close)
	c, err := traces.ParseCanvasID("0e3f5a1c-0000-4000-8000-00000000c0de")
	if err != nil {
		t.Fatal(err)
	}
	return &execRig{svc: tracestore.New(gcs, db, tracestore.Options{Now: now}), db: db, dbURL: url, gcs: gcs, now: now, c: c}
}

// markHeld records a hold in the index, as the holds service does before it
// patches the objects.
func (r *execRig) markHeld(t *testing.T, id traces.TraceID) {
	t.Helper()
	h, err := r.db.BeginHold(t.Context(), r.c, id, index.HoldSpec{}, r.now(), 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.db.EndOp(t.Context(), r.c, id, h.Token, true); err != nil {
		t.Fatal(err)
	}
}

// value is the msgpack encoding of a small positive integer.
func value(n int) traces.Value { return traces.Value{byte(n)} }

func result(tlid traces.TLID, expr uint64, v int) traces.FunctionResult {
	return traces.FunctionResult{TLID: tlid, ExprID: expr, FnName: "HttpClient.get", ArgHash: "a1", Value: value(v)}
}

// save stores a trace of root touching tlids, with one function result.
func (r *execRig) save(t *testing.T, root traces.TLID, tlids ...traces.TLID) tracestore.Saved {
	t.Helper()
	saved, err := r.svc.Save(t.Context(), r.c, &traces.Trace{
		RootTLID: root, TLIDs: tlids,
		Input:           []traces.InputVar{{Name: "request", Value: value(1)}},
		FunctionResults: []traces.FunctionResult{result(root, 1, 1)},
	})
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	return saved
}

func (r *execRig) listed(t *testing.T, tlid traces.TLID) []traces.TraceID {
	t.Helper()
	list, err := r.svc.Recent(t.Context(), r.c, tlid, 10)
	if err != nil {
		t.Fatalf("Recent(%d): %v", tlid, err)
	}
	ids := []traces.TraceID{}
	for _, s := range list {
		ids = append(ids, s.ID)
	}
	return ids
}

func TestReplaceConcurrentIfMatchOneWins(t *testing.T) {
	t.Parallel()
	r := newExecRig(t)
	saved := r.save(t, 10)
	const n = 2
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		res   [n]tracestore.Saved
		errs  [n]error
	)
	for i := range n {
		wg.Go(func() {
			<-start
			res[i], errs[i] = r.svc.Replace(t.Context(), r.c, saved.ID, &traces.Trace{
				RootTLID: 10, Input: []traces.InputVar{{Name: "request", Value: value(10 + i)}},
			}, saved.Generation)
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("both replaces won: %+v, %+v", res[winner], res[i])
			}
			winner = i
		case !errors.Is(err, traces.ErrPreconditionFailed):
			t.Fatalf("replace %d: %v, want ErrPreconditionFailed or success", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no replace won: %v", errs)
	}
	read, err := r.svc.Get(t.Context(), r.c, saved.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if read.Generation != res[winner].Generation || read.Record.Generation != res[winner].Generation {
		t.Errorf("object/index generation = %d/%d, want the winner's %d", read.Generation, read.Record.Generation, res[winner].Generation)
	}
	if got, want := read.Trace.Input[0].Value, value(10+winner); !cmp.Equal(got, want) {
		t.Errorf("input = %v, want the winner's %v", got, want)
	}
}

func TestReplaceUpdatesIndexAndDropsLayers(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	ctx := t.Context()
	saved := r.save(t, 1, 2, 3)
	for i := range 2 {
		if _, err := r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(7, 1, i)}); err != nil {
			t.Fatalf("AddLayer: %v", err)
		}
	}
	got, err := r.svc.Replace(ctx, r.c, saved.ID, &traces.Trace{RootTLID: 1, TLIDs: []traces.TLID{4}}, 0)
	if err != nil {
		t.Fatalf("Replace without If-Match: %v", err)
	}
	if got.Created || got.Generation == saved.Generation {
		t.Errorf("Replace = %+v; want an overwrite with a new generation", got)
	}
	for tlid, want := range map[traces.TLID]int{1: 1, 2: 0, 3: 0, 4: 1, 7: 0} {
		if n := len(r.listed(t, tlid)); n != want {
			t.Errorf("traces listed under tlid %d = %d, want %d", tlid, n, want)
		}
	}
	read, err := r.svc.Get(ctx, r.c, saved.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if read.Record.Layers != 0 || len(read.Trace.FunctionResults) != 0 {
		t.Errorf("after replace: layers %d, results %v; want none", read.Record.Layers, read.Trace.FunctionResults)
	}
	if d := cmp.Diff([]traces.TLID{1, 4}, read.Record.TLIDs); d != "" {
		t.Errorf("indexed tlids (-want +got):\n%s", d)
	}
	for n := 1; n <= 2; n++ {
		r.wantGone(t, traces.LayerKey(r.c, saved.ID, n), fmt.Sprintf("old layer %d", n))
	}
}

// A hold that read the trace's layer count before a replace holds the old
// layer after the overwrite (history seed 601 found it): the replace must
// still remove it, or it stays held past every release, which covers only
// the layers the index counts (none, after the replace).
func TestReplaceDropsAnOldLayerHeldMeanwhile(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	ctx := t.Context()
	saved := r.save(t, 1)
	if _, err := r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(7, 1, 0)}); err != nil {
		t.Fatalf("AddLayer: %v", err)
	}
	layer := traces.LayerKey(r.c, saved.ID, 1)
	if _, err := r.gcs.SetTemporaryHold(ctx, layer, true, time.Time{}); err != nil {
		t.Fatalf("hold the layer as the racing hold does: %v", err)
	}
	if _, err := r.svc.Replace(ctx, r.c, saved.ID, &traces.Trace{RootTLID: 1}, saved.Generation); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	r.wantGone(t, layer, "the old layer held meanwhile")
}

// The overwrite publishes OBJECT_DELETE for the old generation. Even a
// consumer that ignored overwrittenByGeneration would only remove rows of
// that generation or older, and the rows now describe the new one.
func TestReplacedTraceSurvivesOverwriteNotification(t *testing.T) {
	t.Parallel()
	r := newExecRig(t)
	ctx := t.Context()
	saved := r.save(t, 1)
	got, err := r.svc.Replace(ctx, r.c, saved.ID, &traces.Trace{RootTLID: 1}, saved.Generation)
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	n, err := r.db.RemoveMany(ctx, []index.Deletion{{Canvas: r.c, ID: saved.ID, Generation: saved.Generation}})
	if err != nil || n != 0 {
		t.Fatalf("RemoveMany(old generation) = %d, %v; want 0, nil", n, err)
	}
	if ids := r.listed(t, 1); len(ids) != 1 || ids[0] != saved.ID {
		t.Errorf("listed after the overwrite notification = %v, want [%s]", ids, saved.ID)
	}
	if read, err := r.svc.Get(ctx, r.c, saved.ID); err != nil || read.Generation != got.Generation {
		t.Errorf("Get = generation %d, %v; want %d", read.Generation, err, got.Generation)
	}
}

func TestReplaceErrors(t *testing.T) {
	t.Parallel()
	r := newExecRig(t)
	ctx := t.Context()
	saved := r.save(t, 1)
	held := r.save(t, 2)
	if _, err := r.gcs.SetTemporaryHold(ctx, traces.TraceKey(r.c, held.ID), true, time.Time{}); err != nil {
		t.Fatalf("hold: %v", err)
	}
	other := traces.NewTraceID(r.now())
	for _, tc := range []struct {
		name  string
		id    traces.TraceID
		body  traces.Trace
		ifGen int64
		want  error
	}{
		{"stale If-Match", saved.ID, traces.Trace{RootTLID: 1}, saved.Generation + 1, traces.ErrPreconditionFailed},
		{"body names another trace", saved.ID, traces.Trace{ID: other, RootTLID: 1}, 0, traces.ErrInvalid},
		{"If-Match on an unknown trace", other, traces.Trace{RootTLID: 1}, 12345, traces.ErrNotFound},
		{"unknown trace", other, traces.Trace{RootTLID: 1}, 0, traces.ErrNotFound},
		{"held", held.ID, traces.Trace{RootTLID: 2}, held.Generation, traces.ErrHeld},
		{"held without If-Match", held.ID, traces.Trace{RootTLID: 2}, 0, traces.ErrHeld},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := tc.body
			if _, err := r.svc.Replace(ctx, r.c, tc.id, &body, tc.ifGen); !errors.Is(err, tc.want) {
				t.Errorf("Replace = %v, want %v", err, tc.want)
			}
		})
	}
	// Only executors create traces: a replace of an unknown trace writes
	// nothing.
	r.wantGone(t, traces.TraceKey(r.c, other), "object of the unknown trace")
	if ids := r.listed(t, 1); slices.Contains(ids, other) {
		t.Errorf("listed under 1 = %v, want no %s", ids, other)
	}
}

// layerDuringReplace writes a layer object at number 1 right after the
// replace's object write, as a concurrent "execute function" on the new
// trace would once the old layer 1 was gone.
type layerDuringReplace struct {
	*objstore.GCS
	key string
}

func (l *layerDuringReplace) Replace(ctx context.Context, key string, body []byte, o traces.NewObject, ifGen int64) (traces.ObjectInfo, error) {
	info, err := l.GCS.Replace(ctx, key, body, o, ifGen)
	if err != nil {
		return info, err
	}
	st, err := traces.Store(traces.AppendStoredLayer(nil, info.Generation, nil, []traces.FunctionResult{result(10, 1, 3)}))
	if err == nil {
		_, err = l.GCS.Create(ctx, l.key, st.Body, st.LayerObject(o.CustomTime, info.Generation))
	}
	return info, err
}

// A replace drops the old trace's layers, never one written for the new
// trace under a number the old one had left free.
func TestReplaceKeepsLayersOfTheNewTrace(t *testing.T) {
	t.Parallel()
	r := newExecRig(t)
	ctx := t.Context()
	saved := r.save(t, 10)
	for range 2 {
		if _, err := r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(10, 1, 2)}); err != nil {
			t.Fatal(err)
		}
	}
	first, second := traces.LayerKey(r.c, saved.ID, 1), traces.LayerKey(r.c, saved.ID, 2)
	if err := r.gcs.Delete(ctx, first, 0); err != nil { // a gap: layer 1 expired
		t.Fatal(err)
	}
	if _, err := r.emu.E.Advance(ctx, time.Second); err != nil { // the new objects are strictly newer
		t.Fatal(err)
	}
	svc := tracestore.New(&layerDuringReplace{GCS: r.gcs, key: first}, r.db, tracestore.Options{Now: r.now})
	if _, err := svc.Replace(ctx, r.c, saved.ID, &traces.Trace{ID: saved.ID, RootTLID: 10}, 0); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	if _, err := r.gcs.Stat(ctx, first); err != nil {
		t.Errorf("the new trace's layer 1 was dropped: %v", err)
	}
	r.wantGone(t, second, "the old trace's layer 2")
}

// A replace whose deletion of an old layer failed leaves that layer at its
// number. The next layer add finds the number taken: it deletes the stale
// layer (GC renews layers by number and would renew it for as long as the
// trace lives) and takes the next number. History seed 801 found it.
func TestAddLayerDeletesAStaleLayerInItsWay(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	ctx := t.Context()
	saved := r.save(t, 1)
	if _, err := r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(7, 1, 0)}); err != nil {
		t.Fatalf("AddLayer: %v", err)
	}
	info := r.replaceKeepingLayers(t, saved.ID)

	added, err := r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(8, 1, 0)})
	if err != nil || added.N != 2 || added.Generation != info.Generation {
		t.Fatalf("AddLayer after the stale layer = %+v, %v; want layer 2 of generation %d", added, err, info.Generation)
	}
	r.wantGone(t, traces.LayerKey(r.c, saved.ID, 1), "the stale layer 1")
}

// replaceKeepingLayers replaces trace id as Replace does, but for its
// deletion of the old layers (which failed), and returns the new object.
func (r *execRig) replaceKeepingLayers(t *testing.T, id traces.TraceID) traces.ObjectInfo {
	t.Helper()
	rec, info := r.overwrite(t, id)
	rec.Generation, rec.CustomTime, rec.Layers = info.Generation, info.CustomTime, 0
	if _, err := r.db.ReplaceTrace(t.Context(), rec, r.now(), index.Token{}); err != nil {
		t.Fatalf("ReplaceTrace: %v", err)
	}
	return info
}

// overwrite writes a new trace object over trace id (root 1), as a replace
// does before its index write, and returns the record the index still has
// and the new object.
func (r *execRig) overwrite(t *testing.T, id traces.TraceID) (traces.Record, traces.ObjectInfo) {
	t.Helper()
	ctx := t.Context()
	rec, err := r.db.Get(ctx, r.c, id)
	if err != nil {
		t.Fatal(err)
	}
	st, err := traces.Store(traces.AppendTraceMsgpack(nil, &traces.Trace{ID: id, RootTLID: 1, Timestamp: rec.Timestamp}))
	if err != nil {
		t.Fatal(err)
	}
	info, err := r.gcs.Replace(ctx, traces.TraceKey(r.c, id), st.Body, st.Object(r.now()), rec.Generation)
	if err != nil {
		t.Fatalf("overwrite the trace object: %v", err)
	}
	return rec, info
}

// A replace whose index write failed after its object landed, then a layer
// add that read the index (still the old generation): the layer is written
// after the new trace object, for the old one. When the repair step points
// the rows at the new object it deletes that layer, though it is younger
// than the object (its metadata names its generation); a layer added to
// the new generation stays. History seed 97 found it: the old layer, held
// by a hold meanwhile, stayed held after the hold ended.
func TestRepairDropsALayerAddedToTheOldGenerationAfterTheOverwrite(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	ctx := t.Context()
	saved := r.save(t, 1)
	_, info := r.overwrite(t, saved.ID)
	added, err := r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(7, 1, 0)})
	if err != nil || added.Generation != saved.Generation {
		t.Fatalf("AddLayer = %+v, %v; want a layer of generation %d (the index's)", added, err, saved.Generation)
	}
	if err := r.svc.Repair(ctx, r.c, saved.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Repair: %v", err)
	}
	r.wantGone(t, traces.LayerKey(r.c, saved.ID, 1), "the layer of the old generation")
	added, err = r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(8, 1, 0)})
	if err != nil || added.Generation != info.Generation || added.N != 1 {
		t.Fatalf("AddLayer after the repair = %+v, %v; want layer 1 of generation %d", added, err, info.Generation)
	}
}

// A stale layer (of the generation before a replace whose deletion of it
// failed) at a number a later layer add reserved and then died before
// reaching it: the trace now counts that number, so GC would renew the stale
// layer with the trace for as long as it lives. The repair step (the add
// left its token) deletes it, and only it. History seed 37 found it.
func TestRepairDeletesAStaleLayerTheTraceCounts(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	ctx := t.Context()
	saved := r.save(t, 1)
	for range 2 {
		if _, err := r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(7, 1, 0)}); err != nil {
			t.Fatalf("AddLayer: %v", err)
		}
	}
	info := r.replaceKeepingLayers(t, saved.ID)
	if err := r.gcs.Delete(ctx, traces.LayerKey(r.c, saved.ID, 1), 0); err != nil { // the one deletion that worked
		t.Fatal(err)
	}
	if added, err := r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(8, 1, 0)}); err != nil || added.N != 1 {
		t.Fatalf("AddLayer = %+v, %v; want layer 1", added, err)
	}
	if _, _, err := r.db.ReserveLayer(ctx, r.c, saved.ID, tracestore.MaxLayers); err != nil { // number 2, then the process dies
		t.Fatalf("ReserveLayer: %v", err)
	}
	if err := r.svc.Repair(ctx, r.c, saved.ID, time.Now().Add(time.Hour)); err != nil {
		t.Fatalf("Repair: %v", err)
	}
	r.wantGone(t, traces.LayerKey(r.c, saved.ID, 2), "the stale layer 2")
	got, err := r.svc.Get(ctx, r.c, saved.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rs := got.Trace.FunctionResults; got.Generation != info.Generation || len(rs) != 1 || rs[0].TLID != 8 {
		t.Errorf("after the repair: generation %d, results %+v; want generation %d with the new layer's one result", got.Generation, got.Trace.FunctionResults, info.Generation)
	}
}

// A layer written before layers named their generation in metadata is
// judged by its document: a replace still drops it.
func TestReplaceDropsALayerWithoutTheMetadata(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	ctx := t.Context()
	saved := r.save(t, 1)
	added, err := r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(7, 1, 0)})
	if err != nil {
		t.Fatal(err)
	}
	key := traces.LayerKey(r.c, saved.ID, added.N)
	st, err := traces.Store(traces.AppendStoredLayer(nil, saved.Generation, nil, []traces.FunctionResult{result(7, 1, 0)}))
	if err != nil {
		t.Fatal(err)
	}
	info, err := r.gcs.Stat(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.gcs.Replace(ctx, key, st.Body, st.Object(r.now()), info.Generation); err != nil { // as the previous version wrote it
		t.Fatal(err)
	}
	if _, err := r.svc.Replace(ctx, r.c, saved.ID, &traces.Trace{ID: saved.ID, RootTLID: 1}, 0); err != nil {
		t.Fatalf("Replace: %v", err)
	}
	r.wantGone(t, key, "the old layer without metadata")
}

// A replace in a canvas that was deleted (its deletion job failed and waits
// to be resumed, so the trace is still there): the index writes nothing
// into a deleted canvas, and the replace used to answer success anyway,
// leaving the rows of the overwritten document under the new object, so GC
// kept it for the old document's toplevels, not the new one's. It is
// refused now, and the trace goes with its canvas. History seed 1100 found
// it (a keeper of the new document's toplevel was deleted).
func TestReplaceInADeletedCanvas(t *testing.T) {
	t.Parallel()
	r := newExecRig(t)
	ctx := t.Context()
	saved := r.save(t, 1)
	if err := r.db.MarkCanvasDeleted(ctx, r.c, r.now()); err != nil {
		t.Fatal(err)
	}
	_, err := r.svc.Replace(ctx, r.c, saved.ID, &traces.Trace{ID: saved.ID, RootTLID: 2}, 0)
	var pe *traces.PublicError
	if !errors.Is(err, traces.ErrNotFound) || !errors.As(err, &pe) || !strings.Contains(pe.Message, "was deleted") {
		t.Fatalf("Replace in a deleted canvas: %v; want not found, the canvas was deleted", err)
	}
	r.wantGone(t, traces.TraceKey(r.c, saved.ID), "the object")
	if _, err := r.db.Get(ctx, r.c, saved.ID); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("the rows: Get err = %v, want ErrNotFound", err)
	}
}

// wantGone fails the test unless the object at key is gone; what names it.
func (r *execRig) wantGone(t *testing.T, key, what string) {
	t.Helper()
	if _, err := r.gcs.Stat(t.Context(), key); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("%s: Stat err = %v, want ErrNotFound", what, err)
	}
}
