package index

import (
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// TestJobs: a job starts once per canvas and kind, is found by ID, is
// taken over when stale, and stops being running when it ends.
func TestJobs(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	j := traces.Job{ID: traces.JobID(canvasID(7)), Canvas: canvasID(1), Kind: "delete_canvas", Created: base}
	got, created, err := db.StartJob(ctx, j)
	if err != nil || !created || got.State != traces.JobRunning {
		t.Fatalf("StartJob = %+v, %v, %v", got, created, err)
	}
	again := j
	again.ID = traces.JobID(canvasID(8))
	if got, created, err := db.StartJob(ctx, again); err != nil || created || got.ID != j.ID {
		t.Errorf("second StartJob = %+v, %v, %v; want the running job", got, created, err)
	}
	if got, err := db.Job(ctx, j.ID); err != nil || got.Canvas != j.Canvas {
		t.Errorf("Job = %+v, %v", got, err)
	}
	stale, err := db.ClaimJobs(ctx, base.Add(time.Minute), base.Add(2*time.Minute))
	if err != nil || len(stale) != 1 || stale[0].ID != j.ID {
		t.Errorf("ClaimJobs = %+v, %v; want the stale job", stale, err)
	}
	j.State, j.Deleted, j.Total, j.Updated = traces.JobDone, 3, 3, base.Add(3*time.Minute)
	if err := db.UpdateJob(ctx, j); err != nil {
		t.Fatal(err)
	}
	if got, err := db.Job(ctx, j.ID); err != nil || got.State != traces.JobDone || got.Deleted != 3 {
		t.Errorf("Job after UpdateJob = %+v, %v", got, err)
	}
	if stale, err := db.ClaimJobs(ctx, base.Add(time.Hour), base.Add(time.Hour)); err != nil || len(stale) != 0 {
		t.Errorf("ClaimJobs after the job ended = %+v, %v", stale, err)
	}
}

// TestNotifyProgressKeepsTheNewestEvent: replicas record in any order; the
// newest event time stays.
func TestNotifyProgressKeepsTheNewestEvent(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	for _, p := range []NotifyProgress{
		{Bucket: "b", LastEventTime: base.Add(time.Hour), Lag: time.Second, RecordedAt: base.Add(time.Hour)},
		{Bucket: "b", LastEventTime: base, Lag: 2 * time.Second, RecordedAt: base.Add(2 * time.Hour)},
	} {
		if err := db.RecordNotifyProgress(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	got, err := db.NotifyProgresses(ctx)
	if err != nil || len(got) != 1 || !got[0].LastEventTime.Equal(base.Add(time.Hour)) || got[0].Lag != 2*time.Second {
		t.Errorf("NotifyProgresses = %+v, %v", got, err)
	}
}

// TestRemoveUnmatchedAcrossCanvases: one batch removes rows of several
// canvases, and a repeat is harmless.
func TestRemoveUnmatchedAcrossCanvases(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	var ds []Deletion
	for c := byte(1); c <= 2; c++ {
		e := traces.UnmatchedEntry{Canvas: canvasID(c), ID: traces.NewTraceID(base), Module: "HTTP", Path: "/x", Modifier: "GET", Timestamp: base}
		if err := db.PutUnmatched(ctx, e); err != nil {
			t.Fatal(err)
		}
		ds = append(ds, Deletion{Canvas: e.Canvas, ID: e.ID})
	}
	for range 2 {
		if err := db.RemoveUnmatched(ctx, ds); err != nil {
			t.Fatal(err)
		}
	}
	for c := byte(1); c <= 2; c++ {
		if got, err := db.ListUnmatched(ctx, canvasID(c), base.Add(-time.Hour), 10); err != nil || len(got) != 0 {
			t.Errorf("canvas %d after RemoveUnmatched: %+v, %v", c, got, err)
		}
	}
}

// TestTableSizes lists the index's tables, the biggest first.
func TestTableSizes(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	put(t, db, record(canvasID(1), 1, 1))
	sizes, err := db.TableSizes(t.Context())
	if err != nil || len(sizes) == 0 {
		t.Fatalf("TableSizes = %v, %v", sizes, err)
	}
	found := false
	for i, s := range sizes {
		found = found || s.Table == "traces"
		if i > 0 && s.Bytes > sizes[i-1].Bytes {
			t.Errorf("not sorted by size: %+v", sizes)
		}
	}
	if !found {
		t.Errorf("no traces table in %+v", sizes)
	}
}

// TestPendingAcrossCanvases: the repair step finds an operation left
// unfinished in any canvas once it is older than the grace.
func TestPendingAcrossCanvases(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	r := record(canvasID(3), 1, 1)
	put(t, db, r)
	if _, _, err := db.BeginOp(ctx, r.Canvas, r.ID); err != nil {
		t.Fatal(err)
	}
	if got, _, err := db.Pending(ctx, time.Hour, 10); err != nil || len(got) != 0 {
		t.Errorf("Pending with an hour's grace = %+v, %v; want none", got, err)
	}
	got, _, err := db.Pending(ctx, 0, 10)
	if err != nil || len(got) != 1 || got[0].Canvas != r.Canvas || got[0].ID != r.ID {
		t.Errorf("Pending = %+v, %v; want the unfinished trace", got, err)
	}
}
