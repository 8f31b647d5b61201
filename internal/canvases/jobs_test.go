package canvases_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/tracegw/tracegw/internal/canvases"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// rows counts a canvas's rows in every index table.
func (r *execRig) rows(t *testing.T, c traces.CanvasID) map[string]int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), r.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	out := map[string]int{}
	for _, table := range []string{"traces", "trace_tlids", "toplevels", "unmatched"} {
		var n int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM "+table+" WHERE canvas_id = $1", [16]byte(c)).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", table, err)
		}
		out[table] = n
	}
	return out
}

// fill saves n traces through the service (index rows and objects), m
// unmatched requests, and writes raw more trace objects directly (objects
// only: the fast way to a big canvas).
func (r *execRig) fill(t *testing.T, n, m, raw int) {
	t.Helper()
	ctx := t.Context()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i := range n {
		g.Go(func() error {
			_, err := r.svc.Save(gctx, r.c, &traces.Trace{RootTLID: traces.TLID(i%50 + 1), TLIDs: []traces.TLID{1000}})
			return err
		})
	}
	for i := range m {
		g.Go(func() error {
			_, err := r.svc.SaveUnmatched(gctx, r.c, traces.Unmatched{Module: "HTTP", Path: fmt.Sprintf("/%d", i%7), Modifier: "GET"})
			return err
		})
	}
	body := []byte{0x80}
	for range raw {
		g.Go(func() error {
			key := traces.TraceKey(r.c, traces.NewTraceID(r.now()))
			_, err := r.gcs.Create(gctx, key, body, traces.NewObject{ContentType: "application/msgpack", CustomTime: r.now()})
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("fill %s: %v", r.c, err)
	}
}

// Deleting a canvas of 5,000 objects leaves none of its objects or index
// rows, including a held trace, and leaves another canvas alone. A second
// delete while the first runs gets the same job.
func TestDeleteCanvas(t *testing.T) {
	t.Parallel()
	r := newExecRigIn(t, memDir(t))
	ctx := t.Context()
	other := *r
	other.c, _ = traces.ParseCanvasID("0e3f5a1c-0000-4000-8000-0000000000b2")
	other.fill(t, 3, 2, 0)
	held := r.save(t, 1)
	if _, err := r.holds.Hold(ctx, r.c, held.ID, "keep"); err != nil {
		t.Fatal(err)
	}
	r.fill(t, 299, 100, 4600)
	if n := r.count(t, traces.CanvasPrefix(r.c)); n != 5000 {
		t.Fatalf("canvas has %d objects, want 5000", n)
	}
	beforeOther := other.rows(t, other.c)

	jobs := canvases.New(r.gcs, r.db, canvases.Options{Now: r.now})
	first, err := jobs.DeleteCanvas(ctx, r.c)
	if err != nil {
		t.Fatalf("DeleteCanvas: %v", err)
	}
	// Run is not started yet, so the job is certainly still running.
	again, err := jobs.DeleteCanvas(ctx, r.c)
	if err != nil || again.ID != first.ID {
		t.Fatalf("second DeleteCanvas = %s, %v; want the running job %s", again.ID, err, first.ID)
	}
	runJobs(t, jobs)
	done, err := jobs.Wait(ctx, first.ID)
	if err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if done.State != traces.JobDone || done.Deleted != 5000 || done.Error != "" {
		t.Errorf("job = %+v; want done with 5000 deleted", done)
	}
	if n := r.count(t, traces.CanvasPrefix(r.c)); n != 0 {
		t.Errorf("objects left in the canvas = %d, want 0", n)
	}
	for table, n := range r.rows(t, r.c) {
		if n != 0 {
			t.Errorf("%s rows left in the canvas = %d, want 0", table, n)
		}
	}
	if n := other.count(t, traces.CanvasPrefix(other.c)); n != 5 {
		t.Errorf("other canvas objects = %d, want 5", n)
	}
	afterOther := other.rows(t, other.c)
	for table, n := range beforeOther {
		if afterOther[table] != n || n == 0 {
			t.Errorf("other canvas %s rows = %d, want %d (and some)", table, afterOther[table], n)
		}
	}
	// Done, so deleting again starts a new (empty) job.
	next, err := jobs.DeleteCanvas(ctx, r.c)
	if err != nil || next.ID == first.ID {
		t.Fatalf("DeleteCanvas after done = %s, %v; want a new job", next.ID, err)
	}
	if j, err := jobs.Wait(ctx, next.ID); err != nil || j.State != traces.JobDone || j.Deleted != 0 {
		t.Errorf("repeat job = %+v, %v; want done with 0 deleted", j, err)
	}
}

// A job whose runner died (here: never ran, after part of the canvas was
// already deleted) is taken over by another runner once its lease lapses.
func TestDeleteCanvasResumes(t *testing.T) {
	t.Parallel()
	r := newExecRig(t)
	ctx := t.Context()
	r.fill(t, 20, 5, 0)
	crashed := canvases.New(r.gcs, r.db, canvases.Options{Now: r.now})
	job, err := crashed.DeleteCanvas(ctx, r.c)
	if err != nil {
		t.Fatal(err)
	}
	for info, err := range r.gcs.Objects(ctx, traces.CanvasPrefix(r.c)) {
		if err != nil {
			t.Fatal(err)
		}
		if err := r.gcs.Delete(ctx, info.Key, 0); err != nil {
			t.Fatal(err)
		}
		break // the crashed runner got one object done
	}
	if _, err := r.emu.E.Advance(ctx, 2*time.Minute); err != nil { // past the lease
		t.Fatal(err)
	}
	runner := canvases.New(r.gcs, r.db, canvases.Options{Now: r.now})
	runJobs(t, runner)
	// The runner claims the job in its own goroutine: nothing to wait on
	// but the job's record.
	testutil.WaitFor(t, 20*time.Second, "the job to leave running", func() bool {
		j, err := runner.Job(ctx, job.ID)
		return err == nil && j.State != traces.JobRunning
	})
	if j, err := runner.Job(ctx, job.ID); err != nil || j.State != traces.JobDone {
		t.Fatalf("job = %+v, %v; want done", j, err)
	}
	if n := r.count(t, traces.CanvasPrefix(r.c)); n != 0 {
		t.Errorf("objects left = %d, want 0", n)
	}
	for table, n := range r.rows(t, r.c) {
		if n != 0 {
			t.Errorf("%s rows left = %d, want 0", table, n)
		}
	}
}

// memDir returns a directory in memory if the system has one: the
// emulator fsyncs every write, which a disk makes slow for 5,000 objects.
func memDir(t *testing.T) string {
	t.Helper()
	if fi, err := os.Stat("/dev/shm"); err != nil || !fi.IsDir() {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "tracegw-test-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// runJobs runs j until the test ends.
func runJobs(t *testing.T, j *canvases.Service) {
	t.Helper()
	done := make(chan error, 1)
	ctx, cancel := context.WithCancel(t.Context())
	go func() { done <- j.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
}

// Sequence 11, canvas deletion: a save racing the job's last pass either
// survived for ever (rows written after the job removed the canvas's rows:
// a kept trace nobody can delete) or left rows without an object. The
// canvas is marked deleted before the job starts; a save whose rows would
// come after is refused and deletes its own object.
func TestSaveRacingCanvasDeletion(t *testing.T) {
	t.Parallel()
	r := newExecRig(t)
	ctx := t.Context()
	r.save(t, 1)
	jobs := canvases.New(r.gcs, r.db, canvases.Options{Now: r.now})
	job, err := jobs.DeleteCanvas(ctx, r.c)
	if err != nil {
		t.Fatal(err)
	}
	// The job has not listed the canvas yet; a save arrives.
	late, err := r.svc.Save(ctx, r.c, &traces.Trace{RootTLID: 2})
	if !errors.Is(err, traces.ErrNotFound) {
		t.Fatalf("save into a deleted canvas = %+v, %v; want ErrNotFound", late, err)
	}
	if _, err := r.svc.SaveUnmatched(ctx, r.c, traces.Unmatched{Module: "HTTP", Path: "/x", Modifier: "GET"}); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("unmatched request into a deleted canvas: %v, want ErrNotFound", err)
	}
	runJobs(t, jobs)
	if j, err := jobs.Wait(ctx, job.ID); err != nil || j.State != traces.JobDone {
		t.Fatalf("job = %+v, %v", j, err)
	}
	// A save after the job's last pass.
	if _, err := r.svc.Save(ctx, r.c, &traces.Trace{RootTLID: 3}); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("save after the deletion: %v, want ErrNotFound", err)
	}
	if n := r.count(t, traces.CanvasPrefix(r.c)); n != 0 {
		t.Errorf("objects left = %d, want 0", n)
	}
	for table, n := range r.rows(t, r.c) {
		if n != 0 {
			t.Errorf("%s rows left = %d, want 0", table, n)
		}
	}
}
