package canvases

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tracegw/tracegw/internal/traces"
)

// canvasObjects is what deleting a canvas needs from Cloud Storage.
type canvasObjects interface {
	// Objects lists the objects under prefix, page by page.
	Objects(ctx context.Context, prefix string) iter.Seq2[traces.ObjectInfo, error]
	// Delete removes key (ifGeneration 0: any); absent wraps ErrNotFound,
	// held wraps ErrHeld.
	Delete(ctx context.Context, key string, ifGeneration int64) error
	// SetTemporaryHold releases (held false) the object's hold.
	SetTemporaryHold(ctx context.Context, key string, held bool, customTime time.Time) (traces.ObjectInfo, error)
}

// jobIndex is what the job runner needs from the index.
type jobIndex interface {
	// StartJob inserts j unless a job of its kind already runs for its
	// canvas; it returns the running job and whether it is j.
	StartJob(ctx context.Context, j traces.Job) (traces.Job, bool, error)
	// Job returns one job; unknown wraps ErrNotFound.
	Job(ctx context.Context, id traces.JobID) (traces.Job, error)
	// ClaimJobs takes over running jobs not updated since staleBefore by
	// setting their updated_at to now, and returns them.
	ClaimJobs(ctx context.Context, staleBefore, now time.Time) ([]traces.Job, error)
	// UpdateJob records j's progress, state and error.
	UpdateJob(ctx context.Context, j traces.Job) error
	// ForgetToplevel marks the toplevel deleted at time at.
	ForgetToplevel(ctx context.Context, c traces.CanvasID, tlid traces.TLID, at time.Time) error
	// MarkCanvasDeleted records the canvas deleted, so that no index write
	// creates rows of it any more.
	MarkCanvasDeleted(ctx context.Context, c traces.CanvasID, at time.Time) error
	// RemoveCanvasRows deletes up to batch index rows of each table of the
	// canvas and returns how many it deleted (0: none left).
	RemoveCanvasRows(ctx context.Context, c traces.CanvasID, batch int) (int64, error)
	policyIndex // policy.go
}

// HoldReleaser releases the holds the index records for a canvas
// (holds.Service). Held objects it does not know of are released when
// their delete is refused.
type HoldReleaser interface {
	ReleaseHeld(ctx context.Context, c traces.CanvasID) (int, error)
}

// Defaults of Jobs' settings.
const (
	DefaultDeleteConcurrency = 16
	DefaultRowBatch          = 5000
	DefaultJobLease          = time.Minute
	// maxDeletePasses bounds how often a job lists the canvas again: a
	// listing that pages by offset can skip objects while earlier ones are
	// deleted, and traces saved while the job runs show up in later passes.
	maxDeletePasses = 10
	// progressEvery is how many deletions pass between progress writes.
	progressEvery = 500
)

// Options configures a Service; the zero value of each field is a default.
type Options struct {
	Now    func() time.Time // the clock; time.Now when nil
	Logger *slog.Logger     // nil discards
	// Holds, if set, releases the canvas's holds before its objects are
	// deleted. Without it a held object is released when its delete is
	// refused, which also works but leaves the index's hold rows to go
	// with the canvas.
	Holds HoldReleaser
	// Concurrency bounds object deletions in flight (default 16).
	Concurrency int
	// RowBatch bounds the index rows deleted per statement (default 5000).
	RowBatch int
	// Lease is how long a running job may go without progress before Run
	// takes it over (default 1 minute). Progress is written every few
	// hundred deletions and every row batch.
	Lease time.Duration
	// Policy, if set, tells the server's keep-N, the default of a canvas
	// without its own (ttl.GC); without it DefaultKeep.
	Policy PolicySource
	// DefaultKeep is the server's keep-N without Policy (default 10).
	DefaultKeep int
	// Renewer, if set, renews at once the traces a raised keep-N newly
	// keeps (ttl.GC); without it the next GC pass does.
	Renewer Renewer
	// RenewTimeout bounds that renewal within a request (default 30 s);
	// what it leaves the next GC pass completes.
	RenewTimeout time.Duration
}

// Service deletes canvases and forgets toplevels. Canvas deletion is a
// background job whose goroutines it owns: DeleteCanvas records a job and
// hands it to Run, which runs it; Run also takes over running jobs that no
// process has updated for Lease (a crash, a restart, a replica that went
// away). Every step of a job is idempotent, so a job taken over simply
// starts again. Safe for concurrent use.
type Service struct {
	objects canvasObjects
	index   jobIndex
	now     func() time.Time
	log     *slog.Logger
	o       Options

	mu     sync.Mutex
	queue  []traces.Job
	active map[traces.JobID]chan struct{}
	wake   chan struct{}
}

// New returns a Service over objs (an *objstore.GCS) and ix (an
// *index.DB). Call Run to run jobs.
func New(objs canvasObjects, ix jobIndex, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultDeleteConcurrency
	}
	if o.RowBatch <= 0 {
		o.RowBatch = DefaultRowBatch
	}
	if o.Lease <= 0 {
		o.Lease = DefaultJobLease
	}
	if o.DefaultKeep <= 0 {
		o.DefaultKeep = 10
	}
	if o.RenewTimeout <= 0 {
		o.RenewTimeout = DefaultRenewTimeout
	}
	return &Service{
		objects: objs, index: ix, now: o.Now, log: o.Logger.With("component", "canvases"), o: o,
		active: map[traces.JobID]chan struct{}{}, wake: make(chan struct{}, 1),
	}
}

// DeleteCanvas starts deleting every object and index row of canvas c and
// returns the job. While one runs for c, it returns that one instead
// (idempotent). The job runs once Run is running (in this process, or in
// another one after Lease). Backend faults wrap ErrUnavailable.
func (j *Service) DeleteCanvas(ctx context.Context, c traces.CanvasID) (traces.Job, error) {
	now := j.now().UTC()
	// The tombstone comes first: a save that commits its rows before it
	// wrote its object before the job's first listing (which deletes it),
	// and one that commits after is refused and deletes its own object.
	if err := j.index.MarkCanvasDeleted(ctx, c, now); err != nil {
		return traces.Job{}, fmt.Errorf("delete canvas %s: %w", c, err)
	}
	job, created, err := j.index.StartJob(ctx, traces.Job{
		ID: traces.JobID(traces.NewTraceID(now)), Canvas: c, Kind: traces.JobDeleteCanvas, State: traces.JobRunning,
		Created: now, Updated: now,
	})
	if err != nil {
		return traces.Job{}, fmt.Errorf("delete canvas %s: %w", c, err)
	}
	if created {
		j.enqueue(job)
	}
	return job, nil
}

// Job returns a job's record; an unknown ID wraps ErrNotFound.
func (j *Service) Job(ctx context.Context, id traces.JobID) (traces.Job, error) {
	job, err := j.index.Job(ctx, id)
	if err != nil {
		return traces.Job{}, traces.PublicIf(fmt.Errorf("job %s: %w", id, err), traces.ErrNotFound, "job %s not found", id)
	}
	return job, nil
}

// Wait blocks until job id, if this process runs or queued it, has
// finished (or ctx is done), then returns its record.
func (j *Service) Wait(ctx context.Context, id traces.JobID) (traces.Job, error) {
	j.mu.Lock()
	done := j.active[id]
	j.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return traces.Job{}, ctx.Err()
		}
	}
	return j.Job(ctx, id)
}

// enqueue hands a job to Run unless this process already has it.
func (j *Service) enqueue(job traces.Job) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.active[job.ID]; ok {
		return
	}
	j.active[job.ID] = make(chan struct{})
	j.queue = append(j.queue, job)
	select {
	case j.wake <- struct{}{}:
	default:
	}
}

func (j *Service) take() []traces.Job {
	j.mu.Lock()
	defer j.mu.Unlock()
	q := j.queue
	j.queue = nil
	return q
}

func (j *Service) finish(id traces.JobID) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if done, ok := j.active[id]; ok {
		close(done)
		delete(j.active, id)
	}
}

func (j *Service) lease() time.Duration { return j.o.Lease }

// Run runs jobs until ctx is done: those DeleteCanvas starts, and running
// jobs nobody has updated for Lease (checked at start and every Lease). It
// returns nil after its jobs have stopped; a job stopped by ctx stays
// running in the index and is taken over after a restart.
func (j *Service) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	tick := time.NewTicker(j.lease())
	defer tick.Stop()
	j.claim(ctx)
	for {
		for _, job := range j.take() {
			wg.Go(func() {
				defer j.finish(job.ID)
				j.run(ctx, job)
			})
		}
		select {
		case <-ctx.Done():
			return nil
		case <-j.wake:
		case <-tick.C:
			j.claim(ctx)
		}
	}
}

// claim takes over stale running jobs.
func (j *Service) claim(ctx context.Context) {
	now := j.now().UTC()
	jobs, err := j.index.ClaimJobs(ctx, now.Add(-j.lease()), now)
	if err != nil {
		if ctx.Err() == nil {
			j.log.Warn("claim stale jobs", "err", err)
		}
		return
	}
	for _, job := range jobs {
		j.log.Info("job taken over", "job_id", job.ID.String(), "canvas_id", job.Canvas.String())
		j.enqueue(job)
	}
}

// run executes one job and records how it ended.
func (j *Service) run(ctx context.Context, job traces.Job) {
	start := j.now()
	err := j.deleteCanvas(ctx, &job)
	if ctx.Err() != nil {
		return // stopping: the job stays running and is taken over later
	}
	job.State, job.Updated = traces.JobDone, j.now().UTC()
	if err != nil {
		job.State, job.Error = traces.JobFailed, jobMessage(err)
		j.log.Error("job failed", "job_id", job.ID.String(), "canvas_id", job.Canvas.String(), "err", err)
	}
	if uerr := j.index.UpdateJob(ctx, job); uerr != nil {
		j.log.Error("record job end", "job_id", job.ID.String(), "canvas_id", job.Canvas.String(), "err", uerr)
		return
	}
	if err == nil {
		j.log.Info("canvas deleted", "job_id", job.ID.String(), "canvas_id", job.Canvas.String(),
			"count", job.Deleted, "duration", j.now().Sub(start))
	}
}

// jobMessage is what an admin reads about a failed job: no keys, no SQL.
func jobMessage(err error) string {
	switch {
	case errors.Is(err, traces.ErrUnavailable):
		return "a backend was unavailable; delete the canvas again to resume"
	case errors.Is(err, traces.ErrHeld):
		return "an object stayed held; delete the canvas again to resume"
	}
	return "internal error; delete the canvas again to resume (details in the gateway log)"
}

// deleteCanvas is the job: release holds, delete every object under the
// canvas prefix (pass after pass until a listing finds none), then the
// index rows in batches. Every step may be repeated.
func (j *Service) deleteCanvas(ctx context.Context, job *traces.Job) error {
	c := job.Canvas
	if j.o.Holds != nil {
		if _, err := j.o.Holds.ReleaseHeld(ctx, c); err != nil {
			return fmt.Errorf("release holds: %w", err)
		}
	}
	for pass := 1; ; pass++ {
		found, err := j.deletePass(ctx, job)
		if err != nil {
			return err
		}
		if found == 0 {
			break
		}
		if pass == maxDeletePasses {
			return fmt.Errorf("delete objects of %s: still finding objects after %d passes (being written?): %w", c, pass, traces.ErrUnavailable)
		}
	}
	for {
		n, err := j.index.RemoveCanvasRows(ctx, c, j.rowBatch())
		if err != nil {
			return fmt.Errorf("remove index rows: %w", err)
		}
		if n == 0 {
			return nil
		}
		job.Updated = j.now().UTC()
		if err := j.index.UpdateJob(ctx, *job); err != nil {
			return fmt.Errorf("record progress: %w", err)
		}
	}
}

func (j *Service) rowBatch() int { return j.o.RowBatch }

// deletePass lists the canvas once and deletes what it finds, with bounded
// concurrency. It returns how many objects the listing found.
func (j *Service) deletePass(ctx context.Context, job *traces.Job) (found int64, err error) {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(j.o.Concurrency)
	var deleted atomic.Int64
	reported := int64(0)
	prefix := traces.CanvasPrefix(job.Canvas)
	for info, lerr := range j.objects.Objects(gctx, prefix) {
		if lerr != nil {
			err = fmt.Errorf("list %s: %w", prefix, lerr)
			break
		}
		found++
		g.Go(func() error {
			ok, err := j.deleteObject(gctx, info.Key)
			if ok {
				deleted.Add(1)
			}
			return err
		})
		if d := deleted.Load(); d-reported >= progressEvery {
			reported = d
			if err = j.progress(gctx, job, found, d); err != nil {
				break
			}
		}
	}
	if werr := g.Wait(); err == nil {
		err = werr
	}
	job.Deleted += deleted.Load()
	job.Total += found
	if err != nil {
		return found, err
	}
	if found > 0 {
		job.Updated = j.now().UTC()
		if err := j.index.UpdateJob(ctx, *job); err != nil {
			return found, fmt.Errorf("record progress: %w", err)
		}
	}
	return found, nil
}

// progress records a pass's progress so far (and renews the job's lease).
func (j *Service) progress(ctx context.Context, job *traces.Job, found, deleted int64) error {
	p := *job
	p.Deleted, p.Total, p.Updated = job.Deleted+deleted, job.Total+found, j.now().UTC()
	if err := j.index.UpdateJob(ctx, p); err != nil {
		return fmt.Errorf("record progress: %w", err)
	}
	return nil
}

// deleteObject deletes one object; gone already is fine, and a held object
// is released first. ok reports that this call deleted it.
func (j *Service) deleteObject(ctx context.Context, key string) (ok bool, err error) {
	err = j.objects.Delete(ctx, key, 0)
	if errors.Is(err, traces.ErrHeld) {
		if _, err = j.objects.SetTemporaryHold(ctx, key, false, time.Time{}); err == nil {
			err = j.objects.Delete(ctx, key, 0)
		}
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, traces.ErrNotFound):
		return false, nil
	}
	return false, fmt.Errorf("delete %s: %w", key, err)
}
