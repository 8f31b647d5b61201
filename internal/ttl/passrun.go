package ttl

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tracegw/tracegw/internal/index"
)

// OverrunFraction is the share of the GC interval past which a pass logs a
// warning and counts as an overrun (tracegw_gc_pass_overruns_total): at its
// deadline, one interval, it is cut short.
const OverrunFraction = 0.5

// passRun is what a pass holds from its start to its end.
type passRun struct {
	lock *index.Lock // the pass barrier; nil for unmanaged GCs and dry runs
	eff  Effective   // the policy it ran under (Retention 0 if refused)
}

func (r passRun) release() { r.lock.Release() }

// begin starts a pass: for a managed GC it takes the pass barrier (not in a
// dry run, which writes nothing), then resolves the policy; either way it
// sets g.eff to the policy the pass runs under. The caller holds passMu and
// calls run.release.
func (g *GC) begin(ctx context.Context, now time.Time, dryRun bool) (passRun, error) {
	p := g.cfg
	g.eff.Store(&p)
	if g.o.Bucket == nil {
		return passRun{eff: Effective{Retention: g.cfg.Retention, Keep: Keeps{Default: g.cfg.Keep}}}, nil
	}
	var run passRun
	if !dryRun {
		// Taken before the policy is read: `tracegw retention set` records
		// a change, then waits for the passes that read the old one.
		lock, err := g.db.BeginPass(ctx)
		if err != nil {
			return run, err
		}
		run.lock = lock
	}
	eff, err := g.resolve(ctx, now, !dryRun)
	if err != nil {
		return run, err
	}
	run.eff = eff
	p.Retention, p.Keep = eff.Retention, eff.Keep.Default
	g.eff.Store(&p)
	g.cur.set(eff.Retention, eff.Keep.Default, now)
	return run, nil
}

// resolve reads the bucket's rule (one bucket GET) and the policy record,
// and resolves the effective policy; with store, a fresh install's record is
// stored (the first replica to store it wins, and every replica then
// resolves against the stored one).
func (g *GC) resolve(ctx context.Context, now time.Time, store bool) (Effective, error) {
	s, err := g.o.Bucket.BucketSettings(ctx)
	if err != nil {
		return Effective{}, fmt.Errorf("read the bucket's lifecycle rule: %w", err)
	}
	rule := ReadRule(s)
	rec, have, err := g.db.Policy(ctx)
	if err != nil {
		return Effective{}, err
	}
	eff, err := Resolve(g.cfg, rule, rec, have, now)
	if err != nil || !eff.Fresh || !store {
		return eff, err
	}
	if rec, err = g.db.InitPolicy(ctx, eff.Record); err != nil {
		return Effective{}, err
	}
	return Resolve(g.cfg, rule, rec, true, now)
}

// Check resolves the policy as a managed pass would, without storing or
// renewing anything: serve --run-gc and tracegw gc refuse to start when it
// fails. Errors wrap ErrDisagree when the configuration, the bucket's rule
// and the policy record disagree. An unmanaged GC returns its configuration.
func (g *GC) Check(ctx context.Context) (Effective, error) {
	if g.o.Bucket == nil {
		return Effective{Retention: g.cfg.Retention, Keep: Keeps{Default: g.cfg.Keep}}, nil
	}
	eff, err := g.resolve(ctx, g.now(), false)
	if err != nil {
		return eff, fmt.Errorf("gc: %w", err)
	}
	return eff, nil
}

// passOutcome classifies a finished pass. Failed keepers (retried next
// pass) make a failed pass although Pass returns no error for them.
func passOutcome(sum Summary, err error, cutShort bool) string {
	switch {
	case cutShort:
		return index.PassCutShort
	case errors.Is(err, ErrDisagree):
		return index.PassRefused
	case err != nil || sum.Failed > 0:
		return index.PassFailed
	}
	return index.PassOK
}

// keeperDeadline is the earliest moment a keeper could be deleted if GC
// stopped after a fully successful pass that started at start: every keeper
// then had customTime >= start - (Retention - Margin) under the strictest
// retention that may apply, so the rule matches none before start + Margin.
// A pass that skipped canvases another replica was processing counts one
// interval less: that replica read them at most one interval earlier (its
// pass deadline), and reports its own failures.
func (g *GC) keeperDeadline(start time.Time, sum Summary) time.Time {
	d := start.Add(g.cfg.Margin)
	if sum.Skipped > 0 {
		d = d.Add(-g.cfg.Interval)
	}
	return d
}

// recordPass counts a finished pass in the metrics and appends it to the
// pass history. A failure to record is logged, never returned: it must not
// turn a good pass into a failed one.
func (g *GC) recordPass(ctx context.Context, run passRun, sum Summary, start, end time.Time, outcome string, err error) {
	// PostgreSQL keeps microseconds: so does the record, so that LastPass
	// and the history agree.
	start, end = start.UTC().Truncate(time.Microsecond), end.UTC().Truncate(time.Microsecond)
	rec := index.PassRecord{
		Replica: g.o.Replica, StartedAt: start, EndedAt: end, Outcome: outcome,
		RetentionDays: int64(run.eff.Retention / Day), Keep: run.eff.Keep.Default,
		Margin: g.cfg.Margin, Interval: g.cfg.Interval,
		Canvases: sum.Canvases, Renewed: sum.Renewed, Failed: sum.Failed, Skipped: sum.Skipped,
	}
	if outcome == index.PassOK {
		rec.KeeperDeadline = g.keeperDeadline(start, sum)
	}
	if err != nil {
		rec.Error = err.Error()
		if len(rec.Error) > 2000 {
			rec.Error = rec.Error[:2000] + "…"
		}
	}
	g.last = rec
	g.m.record(sum, rec, g.cfg)
	// The pass's own context may be past its deadline: record on a fresh one.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := g.db.RecordPass(rctx, rec); err != nil {
		g.log.Warn("record gc pass", "err", err)
	}
}

// LastPass returns the record of this GC's last pass (zero before the
// first). Safe for concurrent use; it waits for a pass in progress.
func (g *GC) LastPass() index.PassRecord {
	g.passMu.Lock()
	defer g.passMu.Unlock()
	return g.last
}

// loadHealth starts the last-success and keeper-deadline gauges from the
// pass history, so a restarted replica does not report "never" (or a
// deadline of 1970) until its first pass ends. Best effort.
func (g *GC) loadHealth(ctx context.Context) {
	_, _, ok, found, err := g.db.PassHistory(ctx)
	if err != nil {
		g.log.Warn("read gc pass history", "err", err)
		return
	}
	if found {
		g.m.success(ok.EndedAt, ok.KeeperDeadline)
	}
}
