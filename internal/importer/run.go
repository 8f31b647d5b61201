package importer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/internal/traces"
)

// Saver is what Run needs from a gateway; *client.Client has it.
type Saver interface {
	// Import stores one trace in import mode (client.Client.Import).
	Import(ctx context.Context, canvas client.CanvasID, t *client.Trace) (client.Saved, error)
}

// Options configure Run. The zero value of each field is a default.
type Options struct {
	// Concurrency bounds the requests in flight (default 8).
	Concurrency int
	// Rate bounds the requests started per second (0: no limit).
	Rate float64
	// DryRun decodes every line and sends nothing; no checkpoint is read
	// or written.
	DryRun bool
	// Checkpoint is the checkpoint file ("": none, so no resumption).
	Checkpoint string
	// Input identifies the input, for the checkpoint (Identify; zero for
	// standard input: not checked).
	Input Input
	// Limits are the gateway's decoding limits (zero fields: defaults).
	Limits traces.Limits
	// OnProgress, if set, is called after each finished line, one call at
	// a time.
	OnProgress func(Progress)
	// Now is the clock that times the run (default time.Now).
	Now func() time.Time
	// Grace is how long requests in flight when ctx ends may still finish,
	// so that their outcome is recorded (default 10s).
	Grace time.Duration
	// SaveEvery is how many finished lines may pass between two writes of
	// the checkpoint (default 500): after a crash at most that many lines
	// are sent again, which the gateway answers as already present.
	SaveEvery int
}

// Progress is how far a run is.
type Progress struct {
	Offset int64 // bytes of the input read
	Lines  int   // lines finished, earlier runs' included
	Counts Counts
}

// ErrInterrupted is returned (wrapped) when ctx ended before the input did;
// the checkpoint, when there is one, has what finished.
var ErrInterrupted = errors.New("interrupted")

// window bounds how far past the finished prefix the reader may run, so a
// checkpoint's set of finished lines stays small whatever one slow line
// does.
const window = 4096

// run is one Run's shared state; mu guards everything below it.
type run struct {
	o     Options
	s     Saver
	mu    sync.Mutex
	room  *sync.Cond // signalled when the prefix advances or the run stops
	tr    *tracker
	c     Counts
	sent  int
	since int   // lines finished since the checkpoint was last written
	fatal error // a failure that stops the run
	off   int64
	saveM sync.Mutex // one checkpoint write at a time
}

type job struct {
	line   int
	canvas client.CanvasID
	trace  *client.Trace
}

// Run imports the lines of in through s. A checkpoint of an earlier run
// of the same input is resumed: its finished lines are skipped (on a
// seekable input, by seeking past the finished prefix) and its counts
// carried on. The checkpoint is written as lines finish and when the run
// stops, and removed once every line finished. Run returns when the input
// is done, when ctx ends (an error wrapping ErrInterrupted, after requests
// in flight finish or Options.Grace passes), or at a failure no retry got
// past (the token refused, the gateway unreachable after the client's
// retries): then the error names the line. The Summary counts what
// finished either way.
func Run(ctx context.Context, in io.Reader, s Saver, o Options) (Summary, error) {
	o = withDefaults(o)
	start := o.Now()
	var cp *Checkpoint
	if o.Checkpoint != "" && !o.DryRun {
		var err error
		if cp, err = LoadCheckpoint(o.Checkpoint, o.Input); err != nil {
			return Summary{}, err
		}
	}
	r := &run{o: o, s: s, tr: newTracker(cp)}
	r.room = sync.NewCond(&r.mu)
	sum := Summary{DryRun: o.DryRun, Concurrency: o.Concurrency}
	lr := newLineReader(in, int(o.Limits.OrDefault().MaxBody))
	line := 0
	if cp != nil {
		r.c, sum.Resumed = cp.Counts, true
		sum.Skipped = cp.DoneThrough + len(cp.Done)
		if sk, ok := in.(io.Seeker); ok && cp.Offset > 0 {
			if _, err := sk.Seek(cp.Offset, io.SeekStart); err != nil {
				return Summary{}, fmt.Errorf("seek to the checkpoint's offset: %w", err)
			}
			lr.offset, line = cp.Offset, cp.OffsetLine-1
		}
	}

	// Requests in flight when ctx ends get Grace to finish, so their
	// outcome is known and recorded rather than left for a re-run.
	reqCtx, cancelReq := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelReq()
	stopGrace := context.AfterFunc(ctx, func() {
		time.AfterFunc(o.Grace, cancelReq)
		r.mu.Lock()
		r.room.Broadcast()
		r.mu.Unlock()
	})
	defer stopGrace()

	jobs := make(chan job, o.Concurrency)
	var wg sync.WaitGroup
	var lim *rate.Limiter
	if o.Rate > 0 {
		lim = rate.NewLimiter(rate.Limit(o.Rate), 1)
	}
	for range o.Concurrency {
		wg.Go(func() {
			for j := range jobs {
				r.send(ctx, reqCtx, lim, j)
			}
		})
	}
	eof, readErr := r.dispatch(ctx, lr, &line, jobs)
	close(jobs)
	wg.Wait()

	r.mu.Lock()
	sum.Counts, sum.Sent, sum.Duration = r.c, r.sent, o.Now().Sub(start)
	fatal := r.fatal
	finished := r.tr.doneThrough == line && len(r.tr.done) == 0
	cpNow := r.tr.checkpoint(o.Input, r.c)
	r.mu.Unlock()
	sum.Complete = eof && readErr == nil && fatal == nil && finished
	if o.Checkpoint != "" && !o.DryRun {
		r.saveM.Lock()
		var err error
		if sum.Complete {
			if err = os.Remove(o.Checkpoint); errors.Is(err, os.ErrNotExist) {
				err = nil
			}
		} else {
			err = cpNow.Save(o.Checkpoint)
		}
		r.saveM.Unlock()
		if err != nil {
			return sum, err
		}
	}
	switch {
	case fatal != nil:
		return sum, fatal
	case readErr != nil:
		return sum, readErr
	case !sum.Complete && ctx.Err() != nil:
		return sum, fmt.Errorf("%w: %w", ErrInterrupted, context.Cause(ctx))
	}
	return sum, nil
}

func withDefaults(o Options) Options {
	if o.Concurrency <= 0 {
		o.Concurrency = 8
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Grace <= 0 {
		o.Grace = 10 * time.Second
	}
	if o.SaveEvery <= 0 {
		o.SaveEvery = 500
	}
	return o
}

// dispatch reads lines until the input ends (eof), ctx ends or the run
// fails, deciding the lines it can (blank, finished before, invalid, or
// all of them in a dry run) and queueing the rest.
func (r *run) dispatch(ctx context.Context, lr *lineReader, line *int, jobs chan<- job) (eof bool, err error) {
	for {
		if ctx.Err() != nil || r.failed() {
			return false, nil
		}
		b, tooLong, err := lr.next()
		if err == io.EOF {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		*line++
		n := *line
		r.mu.Lock()
		r.off = lr.offset
		r.tr.read(n, lr.offset)
		if r.tr.isDone(n) {
			r.mu.Unlock()
			continue
		}
		for n > r.tr.doneThrough+window && ctx.Err() == nil && r.fatal == nil {
			r.room.Wait()
		}
		r.mu.Unlock()
		if ctx.Err() != nil || r.failed() {
			// Read but not started: it is not done, so a resumed run
			// reads it again.
			return false, nil
		}
		switch {
		case tooLong:
			r.finish(n, func(c *Counts) {
				c.invalid(Problem{Line: n, Reason: fmt.Sprintf("body: longer than the limit of %d bytes", r.o.Limits.OrDefault().MaxBody)})
			})
		case isBlank(b):
			r.finish(n, nil)
		default:
			canvas, t, err := ParseLine(b, r.o.Limits)
			switch {
			case err != nil:
				r.finish(n, func(c *Counts) { c.invalid(Problem{Line: n, Reason: err.Error()}) })
			case r.o.DryRun:
				r.finish(n, func(c *Counts) { c.Valid++ })
			default:
				jobs <- job{line: n, canvas: canvas, trace: t}
			}
		}
	}
}

func isBlank(b []byte) bool {
	for _, c := range b {
		if c != ' ' && c != '\t' && c != '\r' {
			return false
		}
	}
	return true
}

func (r *run) failed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fatal != nil
}

// send imports one line and records its outcome. A line whose request was
// cut short (the grace after an interruption ran out) or that came after a
// failure stays unfinished: a resumed run sends it.
func (r *run) send(ctx, reqCtx context.Context, lim *rate.Limiter, j job) {
	if r.failed() || ctx.Err() != nil {
		return // queued but not started: a resumed run sends it
	}
	if lim != nil {
		if ctx.Err() != nil || lim.Wait(ctx) != nil {
			return // interrupted while waiting: not started
		}
	}
	r.mu.Lock()
	r.sent++
	r.mu.Unlock()
	saved, err := r.s.Import(reqCtx, j.canvas, j.trace)
	p := Problem{Line: j.line, Canvas: string(j.canvas), TraceID: string(j.trace.ID)}
	var apiErr *client.APIError
	switch {
	case err == nil:
		r.finish(j.line, func(c *Counts) {
			if saved.Created {
				c.Imported++
			} else {
				c.Present++
			}
		})
	case errors.Is(err, client.ErrConflict):
		r.finish(j.line, func(c *Counts) { c.conflict(p) })
	case errors.Is(err, client.ErrUnauthenticated) || errors.Is(err, client.ErrPermission):
		r.fail(fmt.Errorf("line %d: the gateway refused the token (import needs an admin token): %w", j.line, err))
	case reqCtx.Err() != nil:
		// Cut short after an interruption: not finished.
	case (errors.Is(err, client.ErrInvalid) || errors.Is(err, client.ErrTooLarge) || errors.Is(err, client.ErrNotFound)) && errors.As(err, &apiErr):
		p.Reason = apiErr.Message
		r.finish(j.line, func(c *Counts) { c.invalid(p) })
	default:
		r.fail(fmt.Errorf("line %d (canvas %s, trace %s): %w", j.line, j.canvas, j.trace.ID, err))
	}
}

// fail stops the run at its first failure.
func (r *run) fail(err error) {
	r.mu.Lock()
	if r.fatal == nil {
		r.fatal = err
	}
	r.room.Broadcast()
	r.mu.Unlock()
}

// finish records line n as finished (count updates the counts, if set),
// reports progress and writes the checkpoint every SaveEvery lines.
func (r *run) finish(n int, count func(*Counts)) {
	r.mu.Lock()
	if count != nil {
		count(&r.c)
	}
	r.tr.finish(n)
	r.room.Broadcast()
	r.since++
	var cp *Checkpoint
	if r.since >= r.o.SaveEvery && r.o.Checkpoint != "" && !r.o.DryRun {
		r.since = 0
		cp = r.tr.checkpoint(r.o.Input, r.c)
	}
	if r.o.OnProgress != nil {
		r.o.OnProgress(Progress{Offset: r.off, Lines: r.c.Lines(), Counts: r.c})
	}
	r.mu.Unlock()
	if cp != nil {
		// A failed write is retried at the next one and at the end, where
		// its error is returned.
		r.saveM.Lock()
		_ = cp.Save(r.o.Checkpoint)
		r.saveM.Unlock()
	}
}
