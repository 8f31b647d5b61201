package holds_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/api/googleapi"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/holds"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// The real adapters satisfy what holds declares it needs.
var _ = holds.New((*objstore.GCS)(nil), (*index.DB)(nil), holds.Options{Now: time.Now})

// flakyIndex is the real index whose hold writes can be made to fail once,
// as if the database failed (or the process died) at that step.
type flakyIndex struct {
	*index.DB
	failBeginHold, failEndOp, failBeginRelease, failEndRelease atomic.Int32
}

var errInjected = fmt.Errorf("injected failure: %w", traces.ErrUnavailable)

func (f *flakyIndex) BeginHold(ctx context.Context, c traces.CanvasID, id traces.TraceID, h index.HoldSpec, at time.Time, quota int) (index.Holding, error) {
	if f.failBeginHold.Add(-1) >= 0 {
		return index.Holding{}, errInjected
	}
	return f.DB.BeginHold(ctx, c, id, h, at, quota)
}

func (f *flakyIndex) EndOp(ctx context.Context, c traces.CanvasID, id traces.TraceID, tok index.Token, held bool) (bool, error) {
	if f.failEndOp.Add(-1) >= 0 {
		return false, errInjected
	}
	return f.DB.EndOp(ctx, c, id, tok, held)
}

func (f *flakyIndex) BeginRelease(ctx context.Context, c traces.CanvasID, id traces.TraceID) (index.Releasing, error) {
	if f.failBeginRelease.Add(-1) >= 0 {
		return index.Releasing{}, errInjected
	}
	return f.DB.BeginRelease(ctx, c, id)
}

func (f *flakyIndex) EndRelease(ctx context.Context, c traces.CanvasID, id traces.TraceID, tok index.Token, ct time.Time) (bool, error) {
	if f.failEndRelease.Add(-1) >= 0 {
		return false, errInjected
	}
	return f.DB.EndRelease(ctx, c, id, tok, ct)
}

// env is a hold service on a real PostgreSQL and an emulated bucket whose
// lifecycle rule deletes objects 7 days after their customTime.
type env struct {
	emu    *testutil.Emu
	db     *index.DB
	ix     *flakyIndex
	gcs    *objstore.GCS
	svc    *holds.Service
	canvas traces.CanvasID
	base   time.Time // trace timestamps start here
}

const retentionDays = 7

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := t.Context()
	emu := testutil.EmulatorWithOptions(t, emulator.Options{Step: 24 * time.Hour})
	db, err := index.Open(ctx, testutil.PG(t), index.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	_, err = emu.Client.Bucket(emu.Bucket).Update(ctx, storage.BucketAttrsToUpdate{Lifecycle: &storage.Lifecycle{Rules: []storage.LifecycleRule{{
		Action:    storage.LifecycleAction{Type: storage.DeleteAction},
		Condition: storage.LifecycleCondition{DaysSinceCustomTime: retentionDays},
	}}}})
	if err != nil {
		t.Fatalf("set lifecycle rule: %v", err)
	}
	gcs := objstore.New(emu.Client, emu.Bucket)
	ix := &flakyIndex{DB: db}
	c, err := traces.ParseCanvasID("5e1d0000-0000-4000-8000-00000000c0de")
	if err != nil {
		t.Fatal(err)
	}
	return &env{emu: emu, db: db, ix: ix, gcs: gcs, svc: holds.New(gcs, ix, holds.Options{Now: emu.E.Now}), canvas: c,
		base: emu.E.Now().Add(-time.Hour).Truncate(time.Millisecond)}
}

// put stores trace i (timestamp base+i s) of toplevel root with its layers,
// as objects with customTime now, and indexes it.
func (e *env) put(t *testing.T, i int, root traces.TLID, layers int) traces.Record {
	t.Helper()
	ts := e.base.Add(time.Duration(i) * time.Second)
	r := traces.Record{Canvas: e.canvas, ID: traces.NewTraceID(ts), RootTLID: root, TLIDs: []traces.TLID{root},
		Timestamp: ts, CustomTime: e.emu.E.Now().Truncate(time.Second), Layers: layers}
	info, err := e.gcs.Create(t.Context(), traces.TraceKey(e.canvas, r.ID), []byte("trace"), traces.NewObject{CustomTime: r.CustomTime})
	if err != nil {
		t.Fatal(err)
	}
	r.Generation = info.Generation
	for n := 1; n <= layers; n++ {
		e.create(t, traces.LayerKey(e.canvas, r.ID, n))
	}
	if _, err := e.db.PutTrace(t.Context(), r, r.CustomTime); err != nil {
		t.Fatal(err)
	}
	return r
}

// markHeld records a hold in the index only, as if its objects had not
// been reached (or a tool had changed them since).
func (e *env) markHeld(t *testing.T, id traces.TraceID) {
	t.Helper()
	h, err := e.db.BeginHold(t.Context(), e.canvas, id, index.HoldSpec{}, e.base, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.EndOp(t.Context(), e.canvas, id, h.Token, true); err != nil {
		t.Fatal(err)
	}
}

// tokens returns how many operation tokens trace id carries.
func (e *env) tokens(t *testing.T, id traces.TraceID) int {
	t.Helper()
	ps, _, err := e.db.Pending(t.Context(), -time.Hour, 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, p := range ps {
		if p.ID == id {
			n++
		}
	}
	return n
}

func (e *env) create(t *testing.T, key string) {
	t.Helper()
	if _, err := e.gcs.Create(t.Context(), key, []byte("object"), traces.NewObject{CustomTime: e.emu.E.Now()}); err != nil {
		t.Fatal(err)
	}
}

// keys are the trace object's and its layers' names.
func keys(r traces.Record) []string {
	out := []string{traces.TraceKey(r.Canvas, r.ID)}
	for n := 1; n <= r.Layers; n++ {
		out = append(out, traces.LayerKey(r.Canvas, r.ID, n))
	}
	return out
}

// objectHolds reports each object's temporaryHold, "gone" if it is absent.
func (e *env) objectHolds(t *testing.T, ks ...string) []string {
	t.Helper()
	var out []string
	for _, k := range ks {
		info, err := e.gcs.Stat(t.Context(), k)
		switch {
		case errors.Is(err, traces.ErrNotFound):
			out = append(out, "gone")
		case err != nil:
			t.Fatal(err)
		default:
			out = append(out, fmt.Sprint(info.TemporaryHold))
		}
	}
	return out
}

func repeat(s string, n int) []string { return slices.Repeat([]string{s}, n) }

// indexHeld reports the index's held flag of r on its traces row and on
// each of its trace_tlids rows (via listing), "gone" if not indexed.
func (e *env) indexHeld(t *testing.T, r traces.Record) []string {
	t.Helper()
	rec, err := e.db.Get(t.Context(), r.Canvas, r.ID)
	if errors.Is(err, traces.ErrNotFound) {
		return []string{"gone"}
	}
	if err != nil {
		t.Fatal(err)
	}
	out := []string{fmt.Sprint(rec.Held)}
	for _, tl := range rec.TLIDs {
		list, err := e.db.Recent(t.Context(), r.Canvas, tl, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range list {
			if s.ID == r.ID {
				out = append(out, fmt.Sprint(s.Held))
			}
		}
	}
	return out
}

func (e *env) advance(t *testing.T, d time.Duration) {
	t.Helper()
	if _, err := e.emu.E.Advance(t.Context(), d); err != nil {
		t.Fatal(err)
	}
}

func diff(t *testing.T, what string, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("%s (-want +got):\n%s", what, d)
	}
}

// TestHeldTraceOutlivesRetention is the end-to-end promise: a held trace
// (with a layer) that is not among the latest 10 of its toplevel survives 60
// days of lifecycle sweeps, cannot be deleted directly, and once released
// gets a full retention period from the release and is then deleted.
func TestHeldTraceOutlivesRetention(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	held := e.put(t, 0, 77, 1)
	var newer []string
	for i := 1; i <= 11; i++ {
		newer = append(newer, keys(e.put(t, i, 77, 0))...)
	}
	heldAt := e.emu.E.Now()
	h, err := e.svc.Hold(ctx, e.canvas, held.ID, "bug 42")
	if err != nil {
		t.Fatal(err)
	}
	if h.ID != held.ID || h.Reason != "bug 42" || h.HeldAt.Before(heldAt.Truncate(time.Microsecond)) || h.HeldAt.After(e.emu.E.Now()) {
		t.Errorf("Hold = %+v, want trace %s, reason bug 42, held at about %s", h, held.ID, heldAt)
	}
	diff(t, "objects after hold", []string{"true", "true"}, e.objectHolds(t, keys(held)...))
	diff(t, "index after hold", []string{"true", "true"}, e.indexHeld(t, held))

	for _, k := range keys(held) {
		err := e.emu.Client.Bucket(e.emu.Bucket).Object(k).Delete(ctx)
		var ge *googleapi.Error
		if !errors.As(err, &ge) || ge.Code != http.StatusForbidden {
			t.Errorf("delete held %s: err %v, want 403", k, err)
		}
	}

	e.advance(t, 60*24*time.Hour)
	diff(t, "held objects after 60 days", []string{"true", "true"}, e.objectHolds(t, keys(held)...))
	diff(t, "unheld newer objects after 60 days", repeat("gone", len(newer)), e.objectHolds(t, newer...))

	releasedAt := e.emu.E.Now().Truncate(time.Second)
	if err := e.svc.Release(ctx, e.canvas, held.ID); err != nil {
		t.Fatal(err)
	}
	for _, k := range keys(held) {
		info, err := e.gcs.Stat(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		if info.TemporaryHold || info.CustomTime.Before(releasedAt) {
			t.Errorf("%s after release: hold %v, customTime %s; want false, >= %s", k, info.TemporaryHold, info.CustomTime, releasedAt)
		}
	}
	diff(t, "index after release", []string{"false", "false"}, e.indexHeld(t, held))
	if rec, _ := e.db.Get(ctx, e.canvas, held.ID); rec.CustomTime.Before(releasedAt) {
		t.Errorf("index custom_time %s after release, want >= %s", rec.CustomTime, releasedAt)
	}

	e.advance(t, 6*24*time.Hour)
	diff(t, "6 days after release", []string{"false", "false"}, e.objectHolds(t, keys(held)...))
	e.advance(t, 2*24*time.Hour)
	diff(t, "8 days after release", []string{"gone", "gone"}, e.objectHolds(t, keys(held)...))

	// No notification consumer runs here: holding the expired trace finds
	// its object gone, answers not found and heals the index.
	if _, err := e.svc.Hold(ctx, e.canvas, held.ID, ""); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("hold expired trace: err %v, want ErrNotFound", err)
	}
	diff(t, "index after holding the expired trace", []string{"gone"}, e.indexHeld(t, held))
}

func TestHoldUnknownTrace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	id := traces.NewTraceID(e.base)
	if _, err := e.svc.Hold(t.Context(), e.canvas, id, ""); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("Hold: err %v, want ErrNotFound", err)
	}
	if err := e.svc.Release(t.Context(), e.canvas, id); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("Release: err %v, want ErrNotFound", err)
	}
}

// TestHoldReleaseObjectGone: index rows whose object is gone (a lost
// deletion notification) answer not found and are removed.
func TestHoldReleaseObjectGone(t *testing.T) {
	t.Parallel()
	for _, op := range []string{"hold", "release"} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			r := e.put(t, 0, 5, 0)
			if err := e.gcs.Delete(t.Context(), traces.TraceKey(e.canvas, r.ID), 0); err != nil {
				t.Fatal(err)
			}
			var err error
			if op == "hold" {
				_, err = e.svc.Hold(t.Context(), e.canvas, r.ID, "")
			} else {
				e.markHeld(t, r.ID) // release takes the held path
				err = e.svc.Release(t.Context(), e.canvas, r.ID)
			}
			if !errors.Is(err, traces.ErrNotFound) {
				t.Errorf("err %v, want ErrNotFound", err)
			}
			diff(t, "index", []string{"gone"}, e.indexHeld(t, r))
		})
	}
}

func TestHoldReasonLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.put(t, 0, 5, 0)
	for _, tc := range []struct {
		reason    string
		wantLimit bool
	}{
		{strings.Repeat("x", holds.MaxReason+1), true},
		{"nul\x00", false},
		{"bad \xff", false},
	} {
		_, err := e.svc.Hold(t.Context(), e.canvas, r.ID, tc.reason)
		var fe *traces.FieldError
		if !errors.As(err, &fe) || fe.Field != "reason" || (fe.Limit > 0) != tc.wantLimit {
			t.Errorf("Hold(reason %.10q…): err %v, want a reason FieldError (limit %v)", tc.reason, err, tc.wantLimit)
		}
	}
	diff(t, "objects", []string{"false"}, e.objectHolds(t, keys(r)...))
}

// TestQuota: a canvas holds at most Quota traces, counted in the index;
// holding a held one again is not a new hold, and a hold whose last write
// failed still counts (it stands: the repair step completes it).
func TestQuota(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	e.svc = holds.New(e.gcs, e.ix, holds.Options{Now: e.emu.E.Now, Quota: 2})
	a, b, c, d := e.put(t, 0, 5, 0), e.put(t, 1, 5, 0), e.put(t, 2, 5, 0), e.put(t, 3, 5, 0)
	for _, r := range []traces.Record{a, b, a} {
		if _, err := e.svc.Hold(ctx, e.canvas, r.ID, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.svc.Hold(ctx, e.canvas, c.ID, ""); !errors.Is(err, traces.ErrExhausted) {
		t.Fatalf("third hold: err %v, want ErrExhausted", err)
	}
	diff(t, "refused object", []string{"false"}, e.objectHolds(t, keys(c)...))
	if err := e.svc.Release(ctx, e.canvas, b.ID); err != nil {
		t.Fatal(err)
	}
	e.ix.failEndOp.Store(1)
	if _, err := e.svc.Hold(ctx, e.canvas, c.ID, ""); err != nil {
		t.Fatalf("hold whose last write fails: %v (the hold itself is complete)", err)
	}
	if _, err := e.svc.Hold(ctx, e.canvas, d.ID, ""); !errors.Is(err, traces.ErrExhausted) {
		t.Errorf("hold beyond the quota: err %v, want ErrExhausted", err)
	}
}

// Sequence 6 of the keeper-safety review, hold side: a hold whose index
// write failed used to leave its object held for ever, unlisted and
// uncounted. The index is now written first, so a failure there leaves no
// object held; a failure after it leaves the hold recorded and a token
// from which Conform (the repair step) completes it.
func TestHoldsDoNotLeak(t *testing.T) {
	t.Parallel()
	t.Run("index write fails", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		r := e.put(t, 0, 5, 2)
		e.ix.failBeginHold.Store(1)
		if _, err := e.svc.Hold(t.Context(), e.canvas, r.ID, "why"); !errors.Is(err, traces.ErrUnavailable) {
			t.Fatalf("hold: err %v, want the injected ErrUnavailable", err)
		}
		diff(t, "objects", repeat("false", 3), e.objectHolds(t, keys(r)...))
		diff(t, "index", repeat("false", 2), e.indexHeld(t, r))
	})
	t.Run("object write fails", func(t *testing.T) {
		t.Parallel()
		e := newEnv(t)
		r := e.put(t, 0, 5, 2)
		// The trace object gets held, its layers do not.
		failing := holds.New(layersUnavailable{e.gcs}, e.ix, holds.Options{Now: e.emu.E.Now})
		if _, err := failing.Hold(t.Context(), e.canvas, r.ID, "why"); !errors.Is(err, traces.ErrUnavailable) {
			t.Fatalf("hold with failing layer writes: err %v, want ErrUnavailable", err)
		}
		diff(t, "objects", []string{"true", "false", "false"}, e.objectHolds(t, keys(r)...))
		diff(t, "index", repeat("true", 2), e.indexHeld(t, r))
		if n := e.tokens(t, r.ID); n != 1 {
			t.Fatalf("tokens = %d, want 1 left for the repair step", n)
		}
		if err := e.svc.Conform(t.Context(), e.canvas, r.ID); err != nil {
			t.Fatal(err)
		}
		diff(t, "objects after repair", repeat("true", 3), e.objectHolds(t, keys(r)...))
		if hs, err := e.svc.List(t.Context(), e.canvas); err != nil || len(hs) != 1 || hs[0].Reason != "why" {
			t.Errorf("List = %+v, %v; want the one hold, with its reason", hs, err)
		}
	})
}

// layersUnavailable is the bucket with every layer PATCH failing.
type layersUnavailable struct{ *objstore.GCS }

func (l layersUnavailable) SetTemporaryHold(ctx context.Context, key string, held bool, ct time.Time) (traces.ObjectInfo, error) {
	if strings.Contains(key, "/layers/") {
		return traces.ObjectInfo{}, fmt.Errorf("set hold %s: %w", key, errInjected)
	}
	return l.GCS.SetTemporaryHold(ctx, key, held, ct)
}

// Sequence 3 of the keeper-safety review: a release whose index write
// failed used to leave the index saying "held" over a released object, and
// GC skipped it as held. The index is now written first; a failure there
// changes nothing, a failure after it leaves the release recorded and
// completes on Conform. (GC renews keepers whatever the index says; see
// internal/ttl.)
func TestReleaseWhoseIndexWriteFails(t *testing.T) {
	t.Parallel()
	for _, step := range []string{"begin", "end"} {
		t.Run(step, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := t.Context()
			r := e.put(t, 0, 5, 1)
			if _, err := e.svc.Hold(ctx, e.canvas, r.ID, ""); err != nil {
				t.Fatal(err)
			}
			if step == "begin" {
				e.ix.failBeginRelease.Store(1)
			} else {
				e.ix.failEndRelease.Store(1)
			}
			err := e.svc.Release(ctx, e.canvas, r.ID)
			if step == "begin" {
				if !errors.Is(err, traces.ErrUnavailable) {
					t.Fatalf("release: err %v, want the injected failure", err)
				}
				diff(t, "objects", repeat("true", 2), e.objectHolds(t, keys(r)...))
				diff(t, "index", repeat("true", 2), e.indexHeld(t, r))
				return
			}
			if err != nil {
				t.Fatalf("release whose last write fails: %v (the release itself is complete)", err)
			}
			diff(t, "objects", repeat("false", 2), e.objectHolds(t, keys(r)...))
			diff(t, "index", repeat("false", 2), e.indexHeld(t, r))
			if err := e.svc.Conform(ctx, e.canvas, r.ID); err != nil {
				t.Fatal(err)
			}
			diff(t, "objects after repair", repeat("false", 2), e.objectHolds(t, keys(r)...))
		})
	}
}

// A release and a hold racing, the hold's object pass landing after the
// release's: the objects end up held while the index says released. The
// hold's token stays, and Conform releases them.
func TestConformAfterRacingHoldAndRelease(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	r := e.put(t, 0, 5, 1)
	h, err := e.db.BeginHold(ctx, e.canvas, r.ID, index.HoldSpec{}, e.base, 100) // the hold's first step
	if err != nil {
		t.Fatal(err)
	}
	if err := e.svc.Release(ctx, e.canvas, r.ID); err != nil { // the whole release
		t.Fatal(err)
	}
	for _, k := range keys(r) { // the hold's object pass, late
		if _, err := e.gcs.SetTemporaryHold(ctx, k, true, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if held, err := e.db.EndOp(ctx, e.canvas, r.ID, h.Token, true); err != nil || held {
		t.Fatalf("EndOp = %v, %v; want not held", held, err)
	}
	if err := e.svc.Conform(ctx, e.canvas, r.ID); err != nil {
		t.Fatal(err)
	}
	diff(t, "objects", repeat("false", 2), e.objectHolds(t, keys(r)...))
	diff(t, "index", repeat("false", 2), e.indexHeld(t, r))
}

// TestReconcile: consistent traces are left alone; a hold without its
// object loses its rows, an object held without index rows is released so
// it can expire, and a held trace's unheld layer gets held.
func TestReconcile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	held, free := e.put(t, 0, 5, 1), e.put(t, 1, 5, 1)
	if _, err := e.svc.Hold(ctx, e.canvas, held.ID, "keep"); err != nil {
		t.Fatal(err)
	}
	// Index says held, object gone.
	lost := e.put(t, 2, 5, 0)
	if err := e.gcs.Delete(ctx, traces.TraceKey(e.canvas, lost.ID), 0); err != nil {
		t.Fatal(err)
	}
	e.markHeld(t, lost.ID)
	// Object held, unknown to the index.
	orphan := traces.TraceKey(e.canvas, traces.NewTraceID(e.base))
	e.create(t, orphan)
	if _, err := e.gcs.SetTemporaryHold(ctx, orphan, true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	// Held trace whose second layer was written unheld.
	layered := e.put(t, 3, 5, 1)
	if _, err := e.svc.Hold(ctx, e.canvas, layered.ID, ""); err != nil {
		t.Fatal(err)
	}
	layered.Layers = 2
	e.create(t, traces.LayerKey(e.canvas, layered.ID, 2))
	if _, err := e.db.Remove(ctx, e.canvas, layered.ID, layered.Generation); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.PutTrace(ctx, layered, layered.CustomTime); err != nil {
		t.Fatal(err)
	}
	e.markHeld(t, layered.ID)

	before := map[string]int64{}
	for _, k := range append(keys(held), keys(free)...) {
		info, err := e.gcs.Stat(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		before[k] = info.Metageneration
	}
	rep, err := e.svc.Reconcile(ctx, e.canvas)
	if err != nil {
		t.Fatal(err)
	}
	diff(t, "report", holds.Report{Checked: 3, Fixed: 2, Removed: 1}, rep)
	for k, mg := range before {
		if info, err := e.gcs.Stat(ctx, k); err != nil || info.Metageneration != mg {
			t.Errorf("%s: metageneration %d (err %v), want %d: a consistent trace was touched", k, info.Metageneration, err, mg)
		}
	}
	diff(t, "lost", []string{"gone"}, e.indexHeld(t, lost))
	diff(t, "orphan", []string{"false"}, e.objectHolds(t, orphan))
	diff(t, "layered objects", repeat("true", 3), e.objectHolds(t, keys(layered)...))
	diff(t, "layered index", repeat("true", 2), e.indexHeld(t, layered))
	diff(t, "held index", repeat("true", 2), e.indexHeld(t, held))
}

// TestReleaseAll releases every hold of the canvas, including an object
// held behind the index's back, so that every object can then be deleted.
func TestReleaseAll(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	a, b, lost, free := e.put(t, 0, 5, 1), e.put(t, 1, 6, 0), e.put(t, 2, 5, 1), e.put(t, 3, 5, 0)
	for _, r := range []traces.Record{a, b} {
		if _, err := e.svc.Hold(ctx, e.canvas, r.ID, ""); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range keys(lost) {
		if _, err := e.gcs.SetTemporaryHold(ctx, k, true, time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := e.svc.ReleaseAll(ctx, e.canvas)
	if err != nil || n != 3 {
		t.Fatalf("ReleaseAll = %d, %v; want 3", n, err)
	}
	if hs, err := e.svc.List(ctx, e.canvas); err != nil || len(hs) != 0 {
		t.Errorf("List after ReleaseAll = %v, %v; want none", hs, err)
	}
	for _, r := range []traces.Record{a, b, lost, free} {
		for _, k := range keys(r) {
			if err := e.gcs.Delete(ctx, k, 0); err != nil {
				t.Errorf("delete %s after ReleaseAll: %v", k, err)
			}
		}
	}
	if n, err := e.svc.ReleaseAll(ctx, e.canvas); err != nil || n != 0 {
		t.Errorf("second ReleaseAll = %d, %v; want 0", n, err)
	}
}

// TestReleaseUnheldRenewsNothing: releasing a trace that is not held is a
// no-op, so it cannot be used to extend a trace's retention.
func TestReleaseUnheldRenewsNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.put(t, 0, 5, 0)
	before, err := e.gcs.Stat(t.Context(), traces.TraceKey(e.canvas, r.ID))
	if err != nil {
		t.Fatal(err)
	}
	e.advance(t, 24*time.Hour)
	if err := e.svc.Release(t.Context(), e.canvas, r.ID); err != nil {
		t.Fatal(err)
	}
	after, err := e.gcs.Stat(t.Context(), traces.TraceKey(e.canvas, r.ID))
	if err != nil {
		t.Fatal(err)
	}
	if after.Metageneration != before.Metageneration || !after.CustomTime.Equal(before.CustomTime) {
		t.Errorf("after releasing an unheld trace: metageneration %d→%d, customTime %s→%s; want unchanged",
			before.Metageneration, after.Metageneration, before.CustomTime, after.CustomTime)
	}
}

// A hold or release whose process died after its index write and before
// its objects were reached, retried (on another replica): the retry is
// acknowledged, so when it returns the objects are as it says, without
// waiting for the repair step. A retried release used to find the index
// already released and change nothing, leaving the objects held (and the
// trace kept) until the repair step ran.
func TestRetryAfterACrashBetweenIndexAndObjects(t *testing.T) {
	t.Parallel()
	for _, op := range []string{"hold", "release"} {
		t.Run(op, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			ctx := t.Context()
			r := e.put(t, 0, 5, 1)
			want := "true"
			if op == "hold" {
				if _, err := e.db.BeginHold(ctx, e.canvas, r.ID, index.HoldSpec{}, e.base, 100); err != nil { // then the crash
					t.Fatal(err)
				}
				if _, err := e.svc.Hold(ctx, e.canvas, r.ID, ""); err != nil { // the retry
					t.Fatal(err)
				}
			} else {
				if _, err := e.svc.Hold(ctx, e.canvas, r.ID, ""); err != nil {
					t.Fatal(err)
				}
				e.advance(t, 24*time.Hour)
				if _, err := e.db.BeginRelease(ctx, e.canvas, r.ID); err != nil { // then the crash
					t.Fatal(err)
				}
				if err := e.svc.Release(ctx, e.canvas, r.ID); err != nil { // the retry
					t.Fatal(err)
				}
				want = "false"
				for _, k := range keys(r) {
					info, err := e.gcs.Stat(ctx, k)
					if err != nil {
						t.Fatal(err)
					}
					if now := e.emu.E.Now().Truncate(time.Second); info.CustomTime.Before(now) {
						t.Errorf("%s: customTime %s after the retried release at %s; want renewed", k, info.CustomTime, now)
					}
				}
			}
			diff(t, "objects", repeat(want, 2), e.objectHolds(t, keys(r)...))
			diff(t, "index", repeat(want, 2), e.indexHeld(t, r))
			if n := e.tokens(t, r.ID); n != 1 {
				t.Errorf("tokens: %d, want 1 (the crashed operation's, for the repair step)", n)
			}
		})
	}
}
