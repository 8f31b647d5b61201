package ttl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"golang.org/x/time/rate"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// Repairer converges one trace an operation left half done (see
// index.Token); tracestore.Service implements it.
type Repairer interface {
	Repair(ctx context.Context, c traces.CanvasID, id traces.TraceID, cutoff time.Time) error
}

// HoldEnder releases a hold whose end has come, as a release does (the
// trace gets a full retention period from then); holds.Service implements
// it. released is false when the hold's end moved meanwhile or it is gone.
type HoldEnder interface {
	ReleaseEnded(ctx context.Context, c traces.CanvasID, id traces.TraceID) (released bool, err error)
}

// renewer is all a GC pass needs from Cloud Storage.
type renewer interface {
	// SetCustomTime moves customTime forward to t (whole seconds).
	// ifMetageneration 0 means unconditional. The error wraps
	// traces.ErrNotFound if the object is gone, traces.ErrPreconditionFailed
	// if the metageneration moved, traces.ErrUnavailable on 429/5xx after
	// the client's own retries.
	SetCustomTime(ctx context.Context, key string, t time.Time, ifMetageneration int64) (traces.ObjectInfo, error)
	// Stat re-reads an object after a failed PATCH; traces.ErrNotFound if gone.
	Stat(ctx context.Context, key string) (traces.ObjectInfo, error)
}

// Options tunes a GC. The zero value gives the defaults.
type Options struct {
	// Concurrency bounds the objects being renewed at once; default 16.
	Concurrency int
	// Canvases bounds the canvases processed at once; default 4.
	Canvases int
	// PatchesPerSecond caps customTime PATCHes per second (GCS starts a
	// bucket near 1,000 writes/s, shared with saves); default 500, negative
	// for no limit.
	PatchesPerSecond float64
	// Attempts bounds the tries of one PATCH on traces.ErrUnavailable
	// (after the storage client's own); default 4.
	Attempts int
	// Backoff is the first wait before such a retry, doubled each time;
	// default 1s.
	Backoff time.Duration
	// BatchSize is how many traces with unfinished operations the repair
	// step takes per query; default 1000.
	BatchSize int
	// Repair, if set, converges traces whose operations did not finish
	// (tracestore.Service); without it the repair step does nothing.
	Repair Repairer
	// Holds, if set, releases the holds whose end has come (holds.Service):
	// each pass finds them (index.DB.EndedHolds) before renewing keepers.
	// Without it holds with an end stay held.
	Holds HoldEnder
	// RepairGrace is how old an operation token must be (on the database's
	// clock) before the repair step takes it: longer than any operation may
	// run (tracestore and holds bound theirs to one minute, OpTimeout).
	// Default 2 minutes.
	RepairGrace time.Duration
	// EmptyGrace is how long a toplevel must stay empty (database clock)
	// before GC deletes its row: longer than any index write takes.
	// Default 10 minutes.
	EmptyGrace time.Duration
	// OnProgress, if set, is called after each due canvas with the number
	// done and the total (for a progress bar). Calls are serialised.
	OnProgress func(done, total int)
	// Bucket, if set, makes the GC managed (cmd/tracegw always sets it):
	// each pass reads the bucket's lifecycle rule and the policy record and
	// runs under the effective policy (Resolve), or refuses; it takes the
	// pass barrier so `tracegw retention set` can wait for it. Without it the
	// configured Policy is trusted as is (tests of the renewal logic).
	Bucket Bucket
	// Replica names this GC in the pass history (host and process); default
	// "gc".
	Replica string
	// Wait, if set, paces Run: it blocks until the GC's clock (now) reads
	// until or later, or ctx ends (then it returns ctx's error). Against an
	// emulator whose clock jumps (serve --gcs-endpoint at tracegw
	// emulator), it watches that clock, so passes follow emulator time.
	// Default: a wall-clock timer of until minus now.
	Wait func(ctx context.Context, until time.Time) error
}

// Bucket is what a managed GC reads from Cloud Storage each pass: the
// bucket's settings, its lifecycle rules included. *objstore.GCS has it.
type Bucket interface {
	BucketSettings(ctx context.Context) (traces.BucketSettings, error)
}

func (o Options) withDefaults() Options {
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.Canvases <= 0 {
		o.Canvases = 4
	}
	if o.PatchesPerSecond == 0 {
		o.PatchesPerSecond = 500
	}
	if o.Attempts <= 0 {
		o.Attempts = 4
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 1000
	}
	if o.RepairGrace <= 0 {
		o.RepairGrace = 2 * time.Minute
	}
	if o.EmptyGrace <= 0 {
		o.EmptyGrace = 10 * time.Minute
	}
	if o.Replica == "" {
		o.Replica = "gc"
	}
	return o
}

// Summary counts what a pass did. Examined = Renewed + AlreadyFresh + Gone +
// Failed, and Held counts the examined keepers the index says are held; in
// a dry run Renewed counts what would be renewed.
type Summary struct {
	Canvases     int // due canvases processed
	Skipped      int // due canvases another replica was processing
	Examined     int // distinct keepers of due toplevels
	Renewed      int
	AlreadyFresh int
	Held         int
	Gone         int
	Failed       int
	Patches      int // customTime PATCHes issued, layers included
	Repaired     int // traces whose unfinished operations the repair step converged
	HoldsEnded   int // holds released because their end had come
	Duration     time.Duration
	DryRun       bool
}

func (s *Summary) add(o Summary) {
	s.Canvases += o.Canvases
	s.Skipped += o.Skipped
	s.Examined += o.Examined
	s.Renewed += o.Renewed
	s.AlreadyFresh += o.AlreadyFresh
	s.Held += o.Held
	s.Gone += o.Gone
	s.Failed += o.Failed
	s.Patches += o.Patches
	s.Repaired += o.Repaired
	s.HoldsEnded += o.HoldsEnded
}

// GC renews the customTime of the keepers (the latest Policy.Keep traces of
// every live toplevel) before the bucket's lifecycle rule can delete them.
// It is safe for concurrent use, and several GCs (replicas) may run passes
// on one database at once: each canvas is claimed by one of them at a time,
// and the claimer re-reads what is due after claiming, so no object is
// renewed twice in a run.
type GC struct {
	objs renewer
	db   *index.DB
	// cfg is the configured policy. eff is the policy of the last pass:
	// Pass sets it from the effective policy before any canvas is processed
	// (passMu serialises passes); canvas and RenewToplevels (called by
	// requests, concurrently with passes) read it through policy(). Its Keep
	// is the keep of a canvas without its own, which index.DB.Keepers
	// applies in the same statement as it reads the toplevels' rev.
	cfg     Policy
	eff     atomic.Pointer[Policy]
	passMu  sync.Mutex
	last    index.PassRecord // the last pass's record, under passMu
	now     func() time.Time
	log     *slog.Logger
	o       Options
	limiter *rate.Limiter
	sem     chan struct{} // bounds PATCHes in flight across canvases
	m       *metrics
	cur     current // CurrentPolicy's cache
}

// New returns a GC over objs (an *objstore.GCS) and db. It refuses an unsafe
// or invalid policy (see Policy.Validate). A nil log discards; a nil reg
// registers no metrics. now is the clock (the emulator's in tests and in
// tracegw dev). With o.Bucket set, the GC is managed: see Options.Bucket.
func New(objs renewer, db *index.DB, p Policy, now func() time.Time, log *slog.Logger, reg prometheus.Registerer, o Options) (*GC, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("new gc: %w", err)
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o = o.withDefaults()
	limit := rate.Limit(o.PatchesPerSecond)
	if o.PatchesPerSecond < 0 {
		limit = rate.Inf
	}
	g := &GC{
		objs: objs, db: db, cfg: p, now: now, log: log.With("component", "ttl"), o: o,
		limiter: rate.NewLimiter(limit, o.Concurrency),
		sem:     make(chan struct{}, o.Concurrency),
		m:       newMetrics(reg),
	}
	g.m.configure(p)
	return g, nil
}

// policy is the effective policy of the last pass (the configured one
// before the first).
func (g *GC) policy() Policy {
	if p := g.eff.Load(); p != nil {
		return *p
	}
	return g.cfg
}

// SetProgress makes later passes report their progress to f, as
// Options.OnProgress does (nil: none). Call it before passes run.
func (g *GC) SetProgress(f func(done, total int)) { g.o.OnProgress = f }

// SetWait paces Run with f, as Options.Wait does (nil: a wall-clock
// timer). Call it before Run.
func (g *GC) SetWait(f func(ctx context.Context, until time.Time) error) { g.o.Wait = f }

// Run runs a pass at once and then one Policy.Interval (on the GC's clock,
// see Options.Wait) after the start of the previous one, until ctx ends,
// logging each pass's summary (and its error, which does not stop the
// loop: a refused or failed pass is retried at the next tick). Each pass
// has a deadline of one interval, so passes never overlap and the next one
// starts at most one interval after the previous one did. It returns nil
// when ctx ends.
func (g *GC) Run(ctx context.Context) error {
	g.loadHealth(ctx)
	for {
		start := g.now()
		if _, err := g.Pass(ctx, false); err != nil && ctx.Err() == nil {
			g.log.Error("gc pass failed", "err", err)
		}
		if err := g.wait(ctx, start.Add(g.cfg.Interval)); err != nil {
			return nil
		}
	}
}

// wait is Options.Wait, or a wall-clock timer.
func (g *GC) wait(ctx context.Context, until time.Time) error {
	if g.o.Wait != nil {
		return g.o.Wait(ctx, until)
	}
	return sleep(ctx, until.Sub(g.now()))
}

// Step runs one pass and reports how many keepers it renewed: the shape of
// the emulator's OnStep hook, so tracegw dev can run GC on the emulator's
// clock (emulator.Hooks{OnStep: gc.Step}). The time argument is ignored:
// the GC reads its own clock, which is the emulator's there.
func (g *GC) Step(ctx context.Context, _ time.Time) (renewed int, err error) {
	s, err := g.Pass(ctx, false)
	return s.Renewed, err
}

// Pass first repairs traces whose operations did not finish (Options.Repair),
// then finds every live toplevel whose oldest keeper is due (customTime
// older than Policy.RenewBefore under the effective policy: see
// Options.Bucket and Resolve), and renews those keepers to now: the trace
// object and each of its layers, held or not; a keeper whose object is gone
// has its index rows removed; a live toplevel found empty twice goes (a
// forgotten one stays: see index.DB.ForgetToplevel). A canvas another GC is
// processing is skipped. Failures of single objects are counted in
// Summary.Failed, logged and retried next pass (their toplevels stay due);
// the error reports what stopped a canvas (database errors), joined, and the
// other canvases are still processed. dryRun reads the index only: it
// claims nothing, PATCHes nothing, writes nothing and records no metrics,
// and counts what it would renew as Renewed. Pass logs one summary line.
//
// A pass has a deadline of one Policy.Interval; one that hits it is cut
// short, a failed pass. A managed pass that finds the policy disagreeing
// (the error wraps ErrDisagree) renews nothing. Every pass but a dry run is
// counted in the metrics and recorded in the pass history (index.RecordPass)
// with its outcome and, when it fully succeeded, the keeper deadline. Passes
// of one GC run one at a time.
func (g *GC) Pass(ctx context.Context, dryRun bool) (Summary, error) {
	g.passMu.Lock()
	defer g.passMu.Unlock()
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, g.cfg.Interval) // the pass deadline (see Policy)
	defer cancel()
	start := g.now()
	now := start.UTC().Truncate(time.Second) // what GCS stores; never later than the clock
	sum := Summary{DryRun: dryRun}
	run, err := g.begin(ctx, now, dryRun)
	defer run.release()
	if err != nil {
		return g.finish(parent, ctx, run, sum, start, err)
	}
	before := g.policy().RenewBefore(now)
	var (
		mu   sync.Mutex
		errs []error
		done int
	)
	if !dryRun {
		// Repair first: a repaired trace may make toplevels due that this
		// pass then processes.
		n, err := g.repair(ctx)
		sum.Repaired = n
		if err != nil {
			errs = append(errs, err)
		}
		// Then the holds whose end has come: released, each trace gets a
		// fresh retention period, and stays a keeper if it is one.
		n, err = g.endHolds(ctx, now)
		sum.HoldsEnded = n
		if err != nil {
			errs = append(errs, err)
		}
	}
	canvases, err := g.dueCanvases(ctx, before)
	if err != nil {
		return g.finish(parent, ctx, run, sum, start, errors.Join(append(errs, err)...))
	}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(g.o.Canvases)
	for _, c := range canvases {
		eg.Go(func() error {
			s, err := g.canvas(ectx, c, now, before, dryRun)
			mu.Lock()
			defer mu.Unlock()
			sum.add(s)
			if err != nil {
				errs = append(errs, fmt.Errorf("gc canvas %s: %w", c, err))
			}
			done++
			if g.o.OnProgress != nil {
				g.o.OnProgress(done, len(canvases))
			}
			return nil
		})
	}
	_ = eg.Wait() // canvas errors are collected, never returned to the group
	if len(errs) > 10 {
		errs = append(errs[:10], fmt.Errorf("and %d more canvases failed", len(errs)-10))
	}
	return g.finish(parent, ctx, run, sum, start, errors.Join(errs...))
}

// repair converges the traces whose operations did not finish (their token
// is older than RepairGrace), a batch at a time, oldest first, a few at
// once. It returns how many it repaired; a trace that fails keeps its token
// and is tried again next pass.
func (g *GC) repair(ctx context.Context) (int, error) {
	if g.o.Repair == nil {
		return 0, nil
	}
	var cutoff time.Time
	n, errs, err := inBatches(ctx, g.o.BatchSize, g.o.Concurrency, func() ([]index.PendingTrace, error) {
		pending, c, err := g.db.Pending(ctx, g.o.RepairGrace, g.o.BatchSize)
		cutoff = c
		return pending, err
	}, func(ctx context.Context, p index.PendingTrace) (bool, error) {
		return true, g.o.Repair.Repair(ctx, p.Canvas, p.ID, cutoff)
	})
	if err == nil && len(errs) > 0 {
		err = fmt.Errorf("repair: %d traces failed, the first: %w", len(errs), errs[0])
	}
	return n, err
}

// endHolds releases the holds whose end is at or before now (Options.Holds),
// a batch at a time, earliest end first, a few at once. It returns how many
// it released; a hold whose release fails keeps its end and is tried again
// next pass.
func (g *GC) endHolds(ctx context.Context, now time.Time) (int, error) {
	if g.o.Holds == nil {
		return 0, nil
	}
	n, errs, err := inBatches(ctx, g.o.BatchSize, g.o.Concurrency, func() ([]index.EndedHold, error) {
		return g.db.EndedHolds(ctx, now, g.o.BatchSize)
	}, func(ctx context.Context, h index.EndedHold) (bool, error) {
		ok, err := g.o.Holds.ReleaseEnded(ctx, h.Canvas, h.ID)
		switch {
		case errors.Is(err, traces.ErrNotFound):
			return false, nil // gone meanwhile (its rows went with it): nothing to end
		case err != nil:
			return false, fmt.Errorf("end hold of %s/%s: %w", h.Canvas, h.ID, err)
		case ok:
			g.log.Debug("hold ended", "canvas_id", h.Canvas, "trace_id", h.ID)
		}
		return ok, nil
	})
	if err == nil && len(errs) > 0 {
		err = fmt.Errorf("end holds: %d failed, the first: %w", len(errs), errs[0])
	}
	return n, err
}

// inBatches runs do on what fetch returns, a batch (of up to size) at a
// time, concurrency at once, for at most 100 batches: what is left waits
// for the next pass. It stops after a batch with a failure, a short batch,
// or a batch in which do did nothing (it would be read again as it is). It
// returns how many items do reported done, do's failures, and fetch's
// error.
func inBatches[T any](ctx context.Context, size, concurrency int, fetch func() ([]T, error), do func(context.Context, T) (bool, error)) (int, []error, error) {
	var (
		n    atomic.Int64
		errs []error
		mu   sync.Mutex
	)
	for range 100 {
		batch, err := fetch()
		if err != nil || len(batch) == 0 {
			return int(n.Load()), errs, err
		}
		before := n.Load()
		eg, ectx := errgroup.WithContext(ctx)
		eg.SetLimit(concurrency)
		for _, item := range batch {
			eg.Go(func() error {
				switch ok, err := do(ectx, item); {
				case err != nil:
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				case ok:
					n.Add(1)
				}
				return nil // failures are collected, never cancel the others
			})
		}
		_ = eg.Wait()
		if len(errs) > 0 || len(batch) < size || n.Load() == before {
			break
		}
	}
	return int(n.Load()), errs, nil
}

// finish ends a pass: it decides the outcome (see passOutcome), counts it,
// records it in the pass history and logs the summary. parent is Pass's
// context, ctx the one with the pass deadline.
func (g *GC) finish(parent, ctx context.Context, run passRun, sum Summary, start time.Time, err error) (Summary, error) {
	end := g.now()
	sum.Duration = end.Sub(start)
	cutShort := errors.Is(ctx.Err(), context.DeadlineExceeded) && parent.Err() == nil
	if cutShort {
		err = errors.Join(err, fmt.Errorf("cut short at its deadline of one GC interval (%s)", FormatDuration(g.cfg.Interval)))
	}
	outcome := passOutcome(sum, err, cutShort)
	interrupted := parent.Err() != nil
	if !sum.DryRun && !interrupted {
		g.recordPass(parent, run, sum, start, end, outcome, err)
	}
	overrun := sum.Duration > time.Duration(float64(g.cfg.Interval)*OverrunFraction)
	g.log.Log(parent, passLogLevel(sum, outcome, overrun), "gc pass done", "outcome", outcome, "dry_run", sum.DryRun, "canvases", sum.Canvases, "skipped", sum.Skipped,
		"examined", sum.Examined, "renewed", sum.Renewed, "already_fresh", sum.AlreadyFresh,
		"held", sum.Held, "gone", sum.Gone, "failed", sum.Failed, "patches", sum.Patches,
		"repaired", sum.Repaired, "holds_ended", sum.HoldsEnded,
		"retention", FormatDuration(run.eff.Retention), "keep", run.eff.Keep.Default,
		"duration", sum.Duration, "interval", g.cfg.Interval)
	if err != nil {
		return sum, fmt.Errorf("gc pass: %w", err)
	}
	return sum, nil
}

// passLogLevel is the level of a pass's summary line: Warn when the pass
// used most of its deadline (GC falls behind), Debug when it did nothing
// (an OK pass that renewed, removed and repaired nothing: the
// common case, and the emulator's clock advance runs one per hour of
// emulated time), else Info: a pass that renewed, failed, was refused or
// cut short, or repaired anything.
func passLogLevel(sum Summary, outcome string, overrun bool) slog.Level {
	switch {
	case overrun:
		return slog.LevelWarn
	case outcome == index.PassOK && sum.Renewed == 0 && sum.Gone == 0 && sum.Failed == 0 &&
		sum.Repaired == 0:
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// dueCanvases lists every canvas with a due toplevel.
func (g *GC) dueCanvases(ctx context.Context, before time.Time) ([]traces.CanvasID, error) {
	return g.db.DueCanvases(ctx, before)
}

// canvas processes the due toplevels of one canvas.
func (g *GC) canvas(ctx context.Context, c traces.CanvasID, now, before time.Time, dryRun bool) (Summary, error) {
	var s Summary
	if !dryRun {
		claim, ok, err := g.db.ClaimCanvas(ctx, c)
		if err != nil {
			return s, err
		}
		if !ok {
			s.Skipped++
			g.log.Debug("canvas claimed elsewhere", "canvas_id", c)
			return s, nil
		}
		defer claim.Release()
	}
	s.Canvases++
	// Read after claiming: a replica that processed the canvas just before
	// has moved renew_after and custom_time, so nothing is renewed twice.
	ks, err := g.db.Keepers(ctx, c, before, g.policy().Keep, nil)
	if err != nil {
		return s, err
	}
	if dryRun {
		pl := decide(ks.Traces, before)
		s.Examined, s.Held, s.AlreadyFresh = len(ks.Traces), pl.held, len(pl.fresh)
		for _, k := range pl.renew {
			g.log.Debug("would renew", "canvas_id", c, "trace_id", k.ID, "count", 1+k.Layers)
		}
		s.Renewed = len(pl.renew)
		return s, nil
	}
	r, err := g.renewKeepers(ctx, c, ks, now, before)
	s.add(r)
	return s, err
}

// RenewToplevels renews, now, the due keepers of the given live toplevels of
// canvas c (and of any of its toplevels already marked due at once), and
// records their next renew_after, as a pass does for due toplevels. The
// services call it after a write that may have made an old, never renewed
// trace a keeper (a revival, a layer linking an old trace, a replace that
// dropped a keeper), so that such a trace does not wait up to a GC interval
// while its retention runs out. It does not claim the canvas: a concurrent
// pass may renew the same object too, which is harmless. Errors are those
// of the index and the bucket. Safe for concurrent use.
func (g *GC) RenewToplevels(ctx context.Context, c traces.CanvasID, tlids []traces.TLID) error {
	now := g.now().UTC().Truncate(time.Second)
	p := g.policy()
	ks, err := g.db.Keepers(ctx, c, time.Time{}, p.Keep, tlids)
	if err != nil {
		return fmt.Errorf("renew toplevels of %s: %w", c, err)
	}
	s, err := g.renewKeepers(ctx, c, ks, now, p.RenewBefore(now))
	if err != nil {
		return fmt.Errorf("renew toplevels of %s: %w", c, err)
	}
	if s.Failed > 0 {
		return fmt.Errorf("renew toplevels of %s: %d keepers failed: %w", c, s.Failed, traces.ErrUnavailable)
	}
	return nil
}

// maxPromotions bounds how many times one pass reads a toplevel's keepers
// again after finding some of them gone.
const maxPromotions = 5

// renewKeepers renews the keepers ks of canvas c whose customTime is before
// before, to now (each object at most once), and writes each toplevel's
// verdict: its next renew_after (never above now minus index.RenewSlack),
// or that it is empty; each only if the toplevel did not change meanwhile.
// A keeper found gone (its deletion notification is late or lost) loses
// its rows, and the next newest trace takes its place: that trace was not
// a keeper, so its retention may be about to run out, and the lifecycle
// rule may apply it before the next pass. So the toplevels that lost a
// keeper are read again and renewed in the same pass, up to maxPromotions
// times.
func (g *GC) renewKeepers(ctx context.Context, c traces.CanvasID, ks index.Keepers, now, before time.Time) (Summary, error) {
	var total Summary
	for round := 1; ; round++ {
		s, lost, err := g.renewRound(ctx, c, ks, now, before)
		total.add(s)
		if err != nil || len(lost) == 0 || round == maxPromotions {
			return total, err
		}
		if ks, err = g.db.Keepers(ctx, c, time.Time{}, g.policy().Keep, lost); err != nil {
			return total, err
		}
	}
}

// renewRound is one round of renewKeepers: it also returns the toplevels
// that had a keeper gone (no verdict written for them).
func (g *GC) renewRound(ctx context.Context, c traces.CanvasID, ks index.Keepers, now, before time.Time) (Summary, []traces.TLID, error) {
	var s Summary
	pl := decide(ks.Traces, before)
	s.Examined, s.Held, s.AlreadyFresh = len(ks.Traces), pl.held, len(pl.fresh)
	out := make(map[traces.TraceID]outcome, len(ks.Traces))
	ct := make(map[traces.TraceID]time.Time, len(ks.Traces))
	for _, k := range ks.Traces {
		ct[k.ID] = k.CustomTime
	}
	var (
		mu      sync.Mutex
		patches atomic.Int64
	)
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(g.o.Concurrency)
	for _, k := range pl.renew {
		eg.Go(func() error {
			o := g.renewTrace(ectx, c, k, now, &patches)
			mu.Lock()
			out[k.ID] = o
			mu.Unlock()
			return nil
		})
	}
	_ = eg.Wait()
	s.Patches = int(patches.Load())
	var renewed []traces.TraceID
	for _, k := range pl.renew {
		switch out[k.ID] {
		case outRenewed:
			s.Renewed++
		case outFresh:
			s.AlreadyFresh++
		case outGone:
			s.Gone++
			continue
		default:
			s.Failed++
			continue
		}
		renewed = append(renewed, k.ID)
		ct[k.ID] = now
	}
	if err := ctx.Err(); err != nil {
		return s, nil, err
	}
	if err := g.db.MarkRenewed(ctx, c, renewed, now); err != nil {
		return s, nil, err
	}
	var lost []traces.TLID
	ceiling := now.Add(-index.RenewSlack)
	vs := make([]index.RenewAfter, 0, len(ks.Toplevels))
	for _, t := range ks.Toplevels {
		if len(t.Keepers) == 0 {
			// Revisit soon: the row goes once it has stayed empty for
			// EmptyGrace (see index.DB.SetRenewAfter).
			vs = append(vs, index.RenewAfter{TLID: t.TLID, Rev: t.Rev, Value: before, Empty: true})
			continue
		}
		if v, ok := renewAfter(t.Keepers, ct, out, ceiling); ok {
			vs = append(vs, index.RenewAfter{TLID: t.TLID, Rev: t.Rev, Value: v})
		} else if slices.ContainsFunc(t.Keepers, func(id traces.TraceID) bool { return out[id] == outGone }) {
			lost = append(lost, t.TLID)
		}
	}
	return s, lost, g.db.SetRenewAfter(ctx, c, vs, g.o.EmptyGrace)
}

// renewTrace moves the customTime of a trace object and its layers to now.
func (g *GC) renewTrace(ctx context.Context, c traces.CanvasID, k index.Keeper, now time.Time, patches *atomic.Int64) outcome {
	select {
	case g.sem <- struct{}{}:
		defer func() { <-g.sem }()
	case <-ctx.Done():
		return outFailed
	}
	patched := false
	for n := 0; n <= k.Layers; n++ {
		key := traces.TraceKey(c, k.ID)
		if n > 0 {
			key = traces.LayerKey(c, k.ID, n)
		}
		p, err := g.renewObject(ctx, key, now, patches)
		switch {
		case err == nil:
			patched = patched || p
		case n == 0 && errors.Is(err, traces.ErrNotFound):
			// The trace is gone (its deletion notification may be late or
			// lost): drop its rows so it stops being a keeper.
			if _, err := g.db.Remove(ctx, c, k.ID, k.Generation); err != nil {
				g.log.Warn("remove gone trace", "canvas_id", c, "trace_id", k.ID, "err", err)
				return outFailed
			}
			g.log.Debug("keeper gone", "canvas_id", c, "trace_id", k.ID, "generation", k.Generation)
			return outGone
		case errors.Is(err, traces.ErrNotFound):
			// A layer number whose object was never written (its add
			// failed), or that expired: nothing to renew; the trace itself
			// still is.
			g.log.Debug("layer gone", "canvas_id", c, "trace_id", k.ID, "count", n)
		default:
			g.log.Warn("renew keeper", "canvas_id", c, "trace_id", k.ID, "err", err)
			return outFailed
		}
	}
	if patched {
		g.log.Debug("renewed", "canvas_id", c, "trace_id", k.ID, "count", 1+k.Layers)
		return outRenewed
	}
	return outFresh
}

// renewObject PATCHes one object's customTime to target. patched is false
// when the object turned out to be at target or later already (re-read
// after a failure: customTime only moves forward, so a later value means
// done; GCS does not document the error for backdating it). A precondition
// failure is re-read and retried once; traces.ErrUnavailable is retried
// with backoff up to Options.Attempts.
func (g *GC) renewObject(ctx context.Context, key string, target time.Time, patches *atomic.Int64) (patched bool, err error) {
	var ifMeta int64
	retriedPrecondition := false
	for attempt := 1; ; attempt++ {
		if err := g.limiter.Wait(ctx); err != nil {
			return false, fmt.Errorf("renew %s: %w", key, err)
		}
		patches.Add(1)
		_, err := g.objs.SetCustomTime(ctx, key, target, ifMeta)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, traces.ErrNotFound):
			return false, err
		case errors.Is(err, traces.ErrPreconditionFailed) && !retriedPrecondition:
			info, serr := g.objs.Stat(ctx, key)
			if serr != nil {
				return false, serr
			}
			if !info.CustomTime.Before(target) {
				return false, nil
			}
			ifMeta, retriedPrecondition = info.Metageneration, true
			continue
		case errors.Is(err, traces.ErrUnavailable) && attempt < g.o.Attempts && ctx.Err() == nil:
			if serr := sleep(ctx, g.o.Backoff<<(attempt-1)); serr != nil {
				return false, fmt.Errorf("renew %s: %w", key, serr)
			}
			continue
		}
		// Anything else (a refused backdating, an exhausted retry): the
		// object may be at target already.
		if info, serr := g.objs.Stat(ctx, key); serr == nil && !info.CustomTime.Before(target) {
			return false, nil
		}
		return false, err
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
