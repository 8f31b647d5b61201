package canvases_test

import (
	"testing"
	"time"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/holds"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
	"github.com/tracegw/tracegw/testutil"
)

// execRig is a trace store and holds on a real PostgreSQL index and the
// GCS emulator, with the emulator's clock.
type execRig struct {
	svc   *tracestore.Service
	holds *holds.Service
	db    *index.DB
	dbURL string
	gcs   *objstore.GCS
	now   func() time.Time
	c     traces.CanvasID
	emu   *testutil.Emu
}

func newExecRig(t *testing.T) *execRig {
	t.Helper()
	return newExecRigIn(t, "")
}

// newExecRigIn is newExecRig with the emulator's files in dir ("": a
// temporary directory).
func newExecRigIn(t *testing.T, dir string) *execRig {
	t.Helper()
	emu := testutil.EmulatorWithOptions(t, emulator.Options{Dir: dir})
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
	gcs := objstore.New(emu.Client, emu.Bucket)
	return &execRig{
		svc:   tracestore.New(gcs, db, tracestore.Options{Now: emu.E.Now}),
		holds: holds.New(gcs, db, holds.Options{Now: emu.E.Now}),
		db:    db, dbURL: url, gcs: gcs, now: emu.E.Now, c: c, emu: emu,
	}
}

// save stores a trace of root.
func (r *execRig) save(t *testing.T, root traces.TLID) tracestore.Saved {
	t.Helper()
	saved, err := r.svc.Save(t.Context(), r.c, &traces.Trace{RootTLID: root})
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	return saved
}

// count returns how many objects there are under prefix.
func (r *execRig) count(t *testing.T, prefix string) int {
	t.Helper()
	n := 0
	for _, err := range r.gcs.Objects(t.Context(), prefix) {
		if err != nil {
			t.Fatalf("list %s: %v", prefix, err)
		}
		n++
	}
	return n
}
