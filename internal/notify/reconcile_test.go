package notify

import (
	"context"
	"iter"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// The reconcile drivers that use these methods take *objstore.GCS.
var (
	_ bucketLister = (*objstore.GCS)(nil)
	_ layerDeleter = (*objstore.GCS)(nil)
)

// fakeBucket is an in-process fake-gcs-server bucket behind the real adapter.
func fakeBucket(t *testing.T) *objstore.GCS {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
	if err != nil {
		t.Fatalf("fakestorage: %v", err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: testBucket})
	return objstore.New(srv.Client(), testBucket)
}

func create(t *testing.T, g *objstore.GCS, key string, customTime time.Time) {
	t.Helper()
	if _, err := g.Create(t.Context(), key, []byte("x"), traces.NewObject{ContentType: "application/msgpack", CustomTime: customTime}); err != nil {
		t.Fatalf("create %s: %v", key, err)
	}
}

// hidingLister lists like the bucket but leaves key out, as a listing page
// read just before key was written would.
type hidingLister struct {
	*objstore.GCS
	key string
}

func (h hidingLister) Objects(ctx context.Context, prefix string) iter.Seq2[traces.ObjectInfo, error] {
	return func(yield func(traces.ObjectInfo, error) bool) {
		for o, err := range h.GCS.Objects(ctx, prefix) {
			if (err != nil || o.Key != h.key) && !yield(o, err) {
				return
			}
		}
	}
}

func TestReconcile(t *testing.T) {
	t.Parallel()
	g := fakeBucket(t)
	db, err := index.Open(t.Context(), testutil.PG(t), index.Options{MaxConns: 4})
	if err != nil {
		t.Fatalf("index.Open: %v", err)
	}
	t.Cleanup(db.Close)
	ct := eventTime.Add(-time.Hour)
	a, b := testCanvas(0xa), testCanvas(0xb)

	present := putTrace(t, db, a, 1, 1, 1)
	create(t, g, traces.TraceKey(a, present.ID), ct)
	create(t, g, traces.LayerKey(a, present.ID, 1), ct)
	gone := putTrace(t, db, a, 2, 1, 0) // its deletion notification was lost
	late := putTrace(t, db, a, 3, 1, 0) // written after the listing page was read
	create(t, g, traces.TraceKey(a, late.ID), ct)
	orphan := traces.NewTraceID(eventTime) // object written, row not (yet)
	create(t, g, traces.TraceKey(a, orphan), ct)
	noCustomTime := putTrace(t, db, a, 4, 1, 0)
	create(t, g, traces.TraceKey(a, noCustomTime.ID), time.Time{})
	create(t, g, traces.UnmatchedKey(a, traces.NewTraceID(eventTime)), ct)
	goneB := putTrace(t, db, b, 5, 1, 0)
	create(t, g, "backups/2026.tar", ct)

	l := hidingLister{GCS: g, key: traces.TraceKey(a, late.ID)}
	indexed := func(r traces.Record) bool {
		_, err := db.Get(t.Context(), r.Canvas, r.ID)
		return err == nil
	}

	rep, err := Reconcile(t.Context(), l, db, &a, true)
	if err != nil {
		t.Fatalf("Reconcile(dry run): %v", err)
	}
	want := ReconcileReport{
		DryRun: true, Objects: 5, Traces: 3, Rows: 4, Missing: 1, Orphans: 1, NoCustomTime: 1,
		MissingKeys:      []string{traces.TraceKey(a, gone.ID)},
		OrphanKeys:       []string{traces.TraceKey(a, orphan)},
		NoCustomTimeKeys: []string{traces.TraceKey(a, noCustomTime.ID)},
	}
	if diff := cmp.Diff(want, rep); diff != "" {
		t.Errorf("dry run report (-want +got):\n%s", diff)
	}
	if !indexed(gone) {
		t.Fatalf("dry run removed rows")
	}

	rep, err = Reconcile(t.Context(), l, db, &a, false)
	if err != nil {
		t.Fatalf("Reconcile(canvas a): %v", err)
	}
	if rep.Missing != 1 || rep.Removed != 1 {
		t.Errorf("canvas a: missing %d removed %d, want 1 and 1", rep.Missing, rep.Removed)
	}
	if indexed(gone) {
		t.Errorf("rows of a gone object survived")
	}
	for _, r := range []traces.Record{present, late, noCustomTime, goneB} {
		if !indexed(r) {
			t.Errorf("rows of %s removed; only the gone object's should go", r.ID)
		}
	}

	rep, err = Reconcile(t.Context(), g, db, nil, false)
	if err != nil {
		t.Fatalf("Reconcile(all): %v", err)
	}
	if rep.Removed != 1 || rep.Foreign != 1 || rep.Rows != 4 || rep.Objects != 7 || rep.Orphans != 1 {
		t.Errorf("all canvases: %+v; want 1 removed (canvas b's), 1 foreign, 4 rows, 7 objects, 1 orphan", rep)
	}
	if indexed(goneB) {
		t.Errorf("canvas b's gone trace still indexed")
	}
}
