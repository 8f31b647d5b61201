package ttl

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// changeAdmin is what Change needs from Cloud Storage: renewing keepers
// and reading and setting the bucket's lifecycle rule. *objstore.GCS has it.
type changeAdmin interface {
	renewer
	bucketAdmin
}

// ChangeOptions configures Change.
type ChangeOptions struct {
	// DryRun reports the plan and changes nothing.
	DryRun bool
	// Step, if set, is called with each step as it happens (the command
	// prints them).
	Step func(line string)
	// GC tunes the renewal passes Change runs (Bucket is set by Change).
	GC Options
	// MarkBatch is how many canvases one transaction marks due; default 100.
	MarkBatch int
	// MaxPasses bounds the renewal passes Change runs before giving up
	// (something keeps failing); default 3.
	MaxPasses int
}

// ChangeReport says what Change did and where the change stands.
type ChangeReport struct {
	// Plan is what the change does, one line per part (retention, keep).
	Plan []string
	// Record is the policy record at the end.
	Record index.PolicyRecord
	// Complete is when the change is complete: GC renews against the new
	// retention (for a raise, SettleWindow after the rule changed) and under
	// the new keep. Zero in a dry run.
	Complete time.Time
}

// Change carries out `tracegw retention set`: it changes the retention (the
// bucket's lifecycle rule) and the global keep-N so that no keeper is lost
// while GCS may still apply the old rule and while replicas still run the
// old policy (see planChange for the decisions). Steps:
//
//  1. record the change (GC replicas read the record every pass);
//  2. wait for the passes that read the old record (index.WaitForPasses);
//  3. if keep was raised, mark every live toplevel due, canvas batch by
//     canvas batch;
//  4. run renewal passes under the new policy until no toplevel is due as
//     of the last pass's start (at most MaxPasses);
//  5. set the bucket's rule, then record when it changed and that the keep
//     raise is complete.
//
// It is idempotent: re-running the same request after a failure or crash
// finishes it, and re-running after it is done changes nothing. Only one
// Change runs at a time (an advisory lock). cfg supplies the margin and
// interval of the renewal passes; its Retention and Keep are ignored.
// Errors wrap ErrDisagree when a different change is in progress or the
// bucket has no rule, traces.ErrInvalid for a bad request or an unsafe
// policy, traces.ErrUnavailable when a backend cannot be reached.
func Change(ctx context.Context, b changeAdmin, db *index.DB, cfg Policy, now func() time.Time, log *slog.Logger,
	want ChangeRequest, o ChangeOptions) (ChangeReport, error) {
	var rep ChangeReport
	step := o.Step
	if step == nil {
		step = func(string) {}
	}
	if o.MarkBatch <= 0 {
		o.MarkBatch = 100
	}
	if o.MaxPasses <= 0 {
		o.MaxPasses = 3
	}
	lock, ok, err := db.LockPolicyChange(ctx)
	if err != nil {
		return rep, err
	}
	if !ok {
		return rep, fmt.Errorf("another `tracegw retention set` is running: %w", traces.ErrConflict)
	}
	defer lock.Release()

	s, err := b.BucketSettings(ctx)
	if err != nil {
		return rep, fmt.Errorf("read the bucket's lifecycle rule: %w", err)
	}
	rec, have, err := db.Policy(ctx)
	if err != nil {
		return rep, err
	}
	plan, err := planChange(rec, have, ReadRule(s), want, now())
	if err != nil {
		return rep, err
	}
	rep.Plan, rep.Record = plan.lines, rec
	for _, l := range plan.lines {
		step(l)
	}
	p := cfg
	p.Retention, p.Keep = time.Duration(plan.start.RetentionDays)*Day, plan.start.Keep
	if err := p.Validate(); err != nil {
		return rep, err
	}
	if o.DryRun {
		return rep, nil
	}
	if !plan.write && !plan.markDue && !plan.setRule {
		rep.Complete = completeAt(rec, now())
		return rep, nil // nothing to change or finish
	}

	if plan.write {
		if err := db.SavePolicy(ctx, plan.start, rec.UpdatedAt); err != nil {
			return rep, err
		}
		step("recorded the change: GC replicas apply it from their next pass")
	}
	step("waiting for GC passes that read the previous policy (at most one --gc-interval)")
	if err := db.WaitForPasses(ctx); err != nil {
		return rep, err
	}
	if plan.markDue {
		if err := markAllDue(ctx, db, o.MarkBatch, step); err != nil {
			return rep, err
		}
	}
	gopts := o.GC
	gopts.Bucket = b
	g, err := New(b, db, p, now, log, nil, gopts)
	if err != nil {
		return rep, err
	}
	if err := renewUntilClean(ctx, g, db, o.MaxPasses, step); err != nil {
		return rep, err
	}
	if plan.setRule {
		from, changed, err := setRule(ctx, b, plan.start.RetentionDays)
		if err != nil {
			return rep, err
		}
		if changed {
			step(fmt.Sprintf("lifecycle rule %s → {Delete if daysSinceCustomTime=%d}", from, plan.start.RetentionDays))
		} else {
			step(fmt.Sprintf("lifecycle rule already {Delete if daysSinceCustomTime=%d}", plan.start.RetentionDays))
		}
		// When a crash hid an earlier change of the rule, now is later than
		// that change: the window only grows, which is safe.
		plan.ruleChanged(now())
	}
	if plan.done != plan.start {
		plan.done.UpdatedAt = now()
		if plan.done.UpdatedAt.Equal(plan.start.UpdatedAt) {
			plan.done.UpdatedAt = plan.done.UpdatedAt.Add(time.Microsecond)
		}
		if err := db.SavePolicy(ctx, plan.done, plan.start.UpdatedAt); err != nil {
			return rep, err
		}
	}
	rep.Record = plan.done
	rep.Complete = completeAt(plan.done, now())
	return rep, nil
}

// completeAt is when the recorded change is complete: at once, except while
// a raised retention settles.
func completeAt(r index.PolicyRecord, now time.Time) time.Time {
	if r.PrevRetentionDays > 0 && r.PrevRetentionDays < r.RetentionDays && now.Before(r.RetentionSettlesAt) {
		return r.RetentionSettlesAt
	}
	return now
}

// markAllDue marks every live toplevel due, a batch of canvases per
// transaction.
func markAllDue(ctx context.Context, db *index.DB, batch int, step func(string)) error {
	var (
		after               traces.CanvasID
		canvases, toplevels int64
	)
	for {
		last, nc, nt, done, err := db.MarkCanvasesDue(ctx, after, batch)
		if err != nil {
			return err
		}
		if done {
			break
		}
		after, canvases, toplevels = last, canvases+nc, toplevels+nt
	}
	step(fmt.Sprintf("marked %d toplevels of %d canvases due", toplevels, canvases))
	return nil
}

// renewUntilClean runs passes of g until one leaves nothing due that it
// covered: no toplevel still marked by markAllDue and none due as of the
// pass's start under its effective retention. Toplevels of keepers found
// gone stay due for one more pass (an older trace becomes a keeper);
// keepers that fail stay due until they succeed.
func renewUntilClean(ctx context.Context, g *GC, db *index.DB, maxPasses int, step func(string)) error {
	for i := 1; ; i++ {
		sum, err := g.Pass(ctx, false)
		last := g.LastPass()
		step(fmt.Sprintf("renewal pass %d under retention %dd, keep %d: %d canvases (%d skipped), renewed %d, failed %d, gone %d in %s",
			i, last.RetentionDays, last.Keep, sum.Canvases, sum.Skipped, sum.Renewed, sum.Failed, sum.Gone, sum.Duration.Round(time.Millisecond)))
		if err != nil {
			return err
		}
		marked, err := db.MarkedDue(ctx)
		if err != nil {
			return err
		}
		before := last.StartedAt.Truncate(time.Second).Add(-(time.Duration(last.RetentionDays)*Day - g.cfg.Margin))
		due, err := db.DueCanvases(ctx, before)
		if err != nil {
			return err
		}
		if marked == 0 && len(due) == 0 && sum.Failed == 0 {
			return nil
		}
		if i >= maxPasses {
			return fmt.Errorf("after %d renewal passes, %d toplevels marked due remain and canvases with due keepers remain (%d keepers failed in the last pass): "+
				"the change stays in progress, GC applies it meanwhile; see the GC's logs and re-run the command: %w",
				i, marked, sum.Failed, traces.ErrUnavailable)
		}
	}
}
