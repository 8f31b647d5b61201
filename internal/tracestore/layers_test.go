package tracestore_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/tracestore"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/internal/traces"
)

func TestLayersLaterWins(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	ctx := t.Context()
	saved := r.save(t, 10) // result (10, 1) = 1
	first, err := r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(10, 1, 2), result(20, 5, 2)})
	if err != nil {
		t.Fatalf("AddLayer 1: %v", err)
	}
	second, err := r.svc.AddLayer(ctx, r.c, saved.ID, []traces.TLID{30}, []traces.FunctionResult{result(10, 1, 3)})
	if err != nil {
		t.Fatalf("AddLayer 2: %v", err)
	}
	if first.N != 1 || second.N != 2 || second.Generation != saved.Generation {
		t.Errorf("layers = %+v, %+v; want 1 and 2 of generation %d", first, second, saved.Generation)
	}
	read, err := r.svc.Get(ctx, r.c, saved.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	want := []traces.FunctionResult{result(10, 1, 3), result(20, 5, 2)}
	if d := cmp.Diff(want, read.Trace.FunctionResults); d != "" {
		t.Errorf("merged results (-want +got):\n%s", d)
	}
	if read.Record.Layers != 2 {
		t.Errorf("Record.Layers = %d, want 2", read.Record.Layers)
	}
	for _, tlid := range []traces.TLID{10, 20, 30} {
		if ids := r.listed(t, tlid); len(ids) != 1 || ids[0] != saved.ID {
			t.Errorf("listed under %d = %v, want [%s]", tlid, ids, saved.ID)
		}
	}
	// A layer object that is gone is skipped.
	if err := r.gcs.Delete(ctx, traces.LayerKey(r.c, saved.ID, 2), 0); err != nil {
		t.Fatal(err)
	}
	read, err = r.svc.Get(ctx, r.c, saved.ID)
	if err != nil {
		t.Fatalf("Get without layer 2: %v", err)
	}
	want = []traces.FunctionResult{result(10, 1, 2), result(20, 5, 2)}
	if d := cmp.Diff(want, read.Trace.FunctionResults); d != "" {
		t.Errorf("merged results without layer 2 (-want +got):\n%s", d)
	}
}

func TestAddLayerConcurrent(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	saved := r.save(t, 10)
	const n = 4
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		got   [n]tracestore.AddedLayer
		errs  [n]error
	)
	for i := range n {
		wg.Go(func() {
			<-start
			got[i], errs[i] = r.svc.AddLayer(t.Context(), r.c, saved.ID, nil,
				[]traces.FunctionResult{result(traces.TLID(100+i), 1, i)})
		})
	}
	close(start)
	wg.Wait()
	seen := map[int]bool{}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("AddLayer %d: %v", i, errs[i])
		}
		seen[got[i].N] = true
	}
	if len(seen) != n {
		t.Errorf("layer numbers = %v, want %d distinct", got, n)
	}
	read, err := r.svc.Get(t.Context(), r.c, saved.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if read.Record.Layers != n || len(read.Trace.FunctionResults) != n+1 {
		t.Errorf("layers %d, results %d; want %d, %d", read.Record.Layers, len(read.Trace.FunctionResults), n, n+1)
	}
}

// A layer written for an older generation (a replace races an add, or a
// replace's layer deletion failed) is never merged into the new trace.
func TestLayerOfOldGenerationSkipped(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	ctx := t.Context()
	saved := r.save(t, 10)
	if _, err := r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(10, 1, 7)}); err != nil {
		t.Fatalf("AddLayer: %v", err)
	}
	key := traces.LayerKey(r.c, saved.ID, 1)
	stale, info, err := r.gcs.Open(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	replaced, err := r.svc.Replace(ctx, r.c, saved.ID, &traces.Trace{RootTLID: 10}, saved.Generation)
	if err != nil {
		t.Fatalf("Replace: %v", err)
	}
	// Put the old layer back and count it, as if its deletion had failed
	// and a later add had numbered past it.
	if _, err := r.gcs.Create(ctx, key, stale, traces.NewObject{ContentType: info.ContentType, ContentEncoding: info.ContentEncoding, CustomTime: r.now()}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.db.ReserveLayer(ctx, r.c, saved.ID, tracestore.MaxLayers); err != nil {
		t.Fatal(err)
	}
	_ = replaced
	read, err := r.svc.Get(ctx, r.c, saved.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(read.Trace.FunctionResults) != 0 {
		t.Errorf("results = %v, want none: the layer belongs to the replaced generation", read.Trace.FunctionResults)
	}
	// The next add numbers past the leftover and is merged.
	added, err := r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(10, 1, 8)})
	if err != nil || added.N != 2 {
		t.Fatalf("AddLayer = %+v, %v; want layer 2", added, err)
	}
	read, err = r.svc.Get(ctx, r.c, saved.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if d := cmp.Diff([]traces.FunctionResult{result(10, 1, 8)}, read.Trace.FunctionResults); d != "" {
		t.Errorf("results (-want +got):\n%s", d)
	}
}

func TestAddLayerErrors(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	ctx := t.Context()
	saved := r.save(t, 10)
	if _, err := r.svc.AddLayer(ctx, r.c, traces.NewTraceID(r.now()), nil, []traces.FunctionResult{result(1, 1, 1)}); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("AddLayer(unknown trace) = %v, want ErrNotFound", err)
	}
	if _, err := r.svc.AddLayer(ctx, r.c, saved.ID, []traces.TLID{1}, nil); !errors.Is(err, traces.ErrInvalid) {
		t.Errorf("AddLayer(no results) = %v, want ErrInvalid", err)
	}
	// The index refuses a layer computed for a generation that was replaced.
	_, tok, err := r.db.ReserveLayer(ctx, r.c, saved.ID, tracestore.MaxLayers)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.db.CommitLayer(ctx, r.c, saved.ID, saved.Generation-1, nil, tok, false, r.now()); !errors.Is(err, traces.ErrPreconditionFailed) {
		t.Errorf("index CommitLayer(old generation) = %v, want ErrPreconditionFailed", err)
	}
}

// A layer added to a held trace is held too, so the lifecycle rule cannot
// take it while the trace is kept.
func TestAddLayerToHeldTrace(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	ctx := t.Context()
	saved := r.save(t, 10)
	r.markHeld(t, saved.ID)
	added, err := r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(10, 1, 2)})
	if err != nil {
		t.Fatalf("AddLayer: %v", err)
	}
	info, err := r.gcs.Stat(ctx, traces.LayerKey(r.c, saved.ID, added.N))
	if err != nil {
		t.Fatal(err)
	}
	if !info.TemporaryHold {
		t.Errorf("layer %d of a held trace is not held", added.N)
	}
}

// staleHold is the index as a layer add saw it just before a hold landed.
type staleHold struct{ *index.DB }

func (s staleHold) ReserveLayer(ctx context.Context, c traces.CanvasID, id traces.TraceID, max int) (traces.Record, index.Token, error) {
	rec, tok, err := s.DB.ReserveLayer(ctx, c, id, max)
	rec.Held = false
	return rec, tok, err
}

// A hold that lands while a layer is being written still covers the layer.
func TestAddLayerRacingAHold(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	ctx := t.Context()
	saved := r.save(t, 10)
	r.markHeld(t, saved.ID)
	svc := tracestore.New(r.gcs, staleHold{r.db}, tracestore.Options{Now: r.now})
	added, err := svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(10, 1, 2)})
	if err != nil {
		t.Fatalf("AddLayer: %v", err)
	}
	info, err := r.gcs.Stat(ctx, traces.LayerKey(r.c, saved.ID, added.N))
	if err != nil {
		t.Fatal(err)
	}
	if !info.TemporaryHold {
		t.Error("a layer written while its trace became held is not held")
	}
}

// A trace takes at most MaxLayers layers (each read fetches them all).
func TestAddLayerLimit(t *testing.T) {
	t.Parallel()
	r := newLayerRig(t)
	ctx := t.Context()
	saved := r.save(t, 10)
	pool, err := pgxpool.New(ctx, r.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, `UPDATE traces SET layers = $1`, tracestore.MaxLayers); err != nil {
		t.Fatal(err)
	}
	_, err = r.svc.AddLayer(ctx, r.c, saved.ID, nil, []traces.FunctionResult{result(10, 1, 2)})
	if !errors.Is(err, traces.ErrExhausted) {
		t.Errorf("AddLayer past %d layers = %v, want ErrExhausted", tracestore.MaxLayers, err)
	}
}
