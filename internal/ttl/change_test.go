package ttl

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// managedGC is a GC as cmd/tracegw builds it: it resolves its policy from
// the bucket's rule and the policy record every pass.
func (e *env) managedGC(t testing.TB, p Policy, reg prometheus.Registerer) *GC {
	t.Helper()
	g, err := New(e.gcs, e.db, p, e.now, nil, reg, Options{Bucket: e.gcs, Backoff: time.Millisecond, Replica: t.Name()})
	if err != nil {
		t.Fatalf("new gc: %v", err)
	}
	return g
}

// runGC makes g the GC that runs at every step of the emulator's clock.
func (e *env) runGC(g *GC) { e.emu.E.SetHooks(emulator.Hooks{OnStep: g.Step}) }

// stopGC lets the clock move with no GC at all.
func (e *env) stopGC() { e.emu.E.SetHooks(emulator.Hooks{}) }

func (e *env) change(t *testing.T, p Policy, want ChangeRequest) ChangeReport {
	t.Helper()
	want.KeepIfNone = p.Keep
	rep, err := Change(t.Context(), e.gcs, e.db, p, e.now, nil, want, ChangeOptions{GC: Options{Backoff: time.Millisecond}})
	if err != nil {
		t.Fatalf("change %+v: %v", want, err)
	}
	return rep
}

func policyOf(days int64, keep int) Policy {
	p := DefaultPolicy()
	p.Retention, p.Keep = time.Duration(days)*Day, keep
	return p
}

// exists reports which of rs still have their object.
func (e *env) exists(t *testing.T, rs []traces.Record) []bool {
	t.Helper()
	keys := e.bucketKeys(t)
	out := make([]bool, len(rs))
	for i, r := range rs {
		_, out[i] = keys[traces.TraceKey(r.Canvas, r.ID)]
	}
	return out
}

func (e *env) mustExist(t *testing.T, when string, rs []traces.Record, want bool) {
	t.Helper()
	for i, ok := range e.exists(t, rs) {
		if ok != want {
			t.Errorf("%s: trace %d (%s) exists = %v, want %v", when, i, rs[i].ID, ok, want)
		}
	}
}

// TestGCRefusesOnDisagreement: a managed GC whose flags disagree with the
// bucket's rule or the recorded policy renews nothing, says which command
// to run, and records and counts a refused pass.
func TestGCRefusesOnDisagreement(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	ctx := t.Context()
	if _, err := SetupBucket(ctx, e.gcs, DefaultPolicy(), BucketOptions{}, false); err != nil {
		t.Fatal(err)
	}
	c := canvas(11)
	r := e.save(t, c, 0, 1)
	e.advance(t, 6*Day) // due under 7d, not under 14d

	reg := prometheus.NewRegistry()
	g := e.managedGC(t, policyOf(14, 10), reg)
	if _, err := g.Check(ctx); !errors.Is(err, ErrDisagree) || !strings.Contains(err.Error(), "tracegw retention set --retention 14d") {
		t.Errorf("Check with --retention 14d on a 7d bucket = %v; want ErrDisagree naming tracegw retention set", err)
	}
	sum, err := g.Pass(ctx, false)
	if !errors.Is(err, ErrDisagree) || sum.Renewed != 0 || sum.Patches != 0 {
		t.Errorf("Pass = %+v, %v; want a refusal that renews nothing", sum, err)
	}
	last, ok, _, okFound, err := e.db.PassHistory(ctx)
	if err != nil || !ok || last.Outcome != index.PassRefused || !strings.Contains(last.Error, "tracegw retention set") || okFound {
		t.Errorf("pass history = %+v (found %v, ok found %v), %v; want one refused pass naming the command", last, ok, okFound, err)
	}
	if got := counterValue(t, g.m.passes.WithLabelValues(index.PassRefused)); got != 1 {
		t.Errorf("refused passes counted = %v, want 1", got)
	}
	if got := gaugeValue(g.m.keeperDeadline); got != 0 {
		t.Errorf("keeper deadline after a refused pass = %v, want unset", got)
	}
	if rec, have, err := e.db.Policy(ctx); err != nil || have {
		t.Errorf("policy record after a refused first pass = %+v, %v, %v; want none", rec, have, err)
	}

	// The agreeing GC records the policy on its first pass and renews.
	g7 := e.managedGC(t, DefaultPolicy(), reg)
	if sum, err := g7.Pass(ctx, false); err != nil || sum.Renewed != 1 {
		t.Fatalf("Pass with --retention 7d = %+v, %v; want the keeper renewed", sum, err)
	}
	if rec, have, err := e.db.Policy(ctx); err != nil || !have || rec.RetentionDays != 7 || rec.Keep != 10 {
		t.Errorf("policy record after the first pass = %+v, %v, %v; want 7d, keep 10", rec, have, err)
	}
	if got, want := gaugeValue(g7.m.keeperDeadline), unixSeconds(g7.LastPass().StartedAt.Add(2*Day)); got != want {
		t.Errorf("keeper deadline = %v, want start + margin = %v", got, want)
	}

	// Now the keep flag disagrees with the record.
	if _, err := e.managedGC(t, policyOf(7, 20), nil).Pass(ctx, false); !errors.Is(err, ErrDisagree) ||
		!strings.Contains(err.Error(), "tracegw retention set --keep-per-toplevel 20") {
		t.Errorf("Pass with --keep-per-toplevel 20 = %v; want a refusal naming tracegw retention set", err)
	}
	// And the rule changed outside tracegw.
	s, err := e.gcs.BucketSettings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.gcs.UpdateBucket(ctx, traces.BucketUpdate{DropRules: []int{0}, AddRules: []traces.LifecycleRule{{Action: "Delete", DaysSinceCustomTime: 3}}}, s.Metageneration); err != nil {
		t.Fatal(err)
	}
	if _, err := g7.Pass(ctx, false); !errors.Is(err, ErrDisagree) || !strings.Contains(err.Error(), "lifecycle rule (3d) disagrees") {
		t.Errorf("Pass after the rule became 3d = %v; want a refusal", err)
	}
	if got := e.exists(t, []traces.Record{r}); !got[0] {
		t.Errorf("the keeper is gone")
	}
}

// applyAfterRuleChange is the bucket with GCS at its fastest: every rule
// change is applied at once (a lifecycle sweep right after the PATCH), so a
// keeper not renewed before the rule is lowered dies on the spot.
type applyAfterRuleChange struct {
	changeAdmin
	emu *emulator.Emulator
}

func (a applyAfterRuleChange) UpdateBucket(ctx context.Context, u traces.BucketUpdate, ifMeta int64) (traces.BucketSettings, error) {
	s, err := a.changeAdmin.UpdateBucket(ctx, u, ifMeta)
	if err == nil {
		_, err = a.emu.ApplyLifecycle(ctx)
	}
	return s, err
}

// TestRetentionLowered: 14d → 7d. Keepers 9 days old survive although the
// new rule is applied the moment it is set (Change renews them against 7d
// first), and the old 14-day rule keeps applying for a day too; traces
// beyond keep-N that are older than 7 days go.
func TestRetentionLowered(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	ctx := t.Context()
	p14 := policyOf(14, 10)
	if _, err := SetupBucket(ctx, e.gcs, p14, BucketOptions{}, false); err != nil {
		t.Fatal(err)
	}
	e.runGC(e.managedGC(t, p14, nil))
	c := canvas(12)
	var rs []traces.Record // oldest first
	for range 12 {
		rs = append(rs, e.save(t, c, 0, 1))
	}
	e.advance(t, 9*Day) // nothing due under 14d - 2d
	keepers, others := rs[2:], rs[:2]

	e.emu.E.KeepApplyingRules(e.emu.Bucket, e.now().Add(24*time.Hour))
	rep, err := Change(ctx, applyAfterRuleChange{e.gcs, e.emu.E}, e.db, p14, e.now, nil,
		ChangeRequest{Retention: 7 * Day}, ChangeOptions{GC: Options{Backoff: time.Millisecond}})
	if err != nil {
		t.Fatalf("change: %v", err)
	}
	if rep.Complete.After(e.now()) {
		t.Errorf("lowering completes at %s, want at once", rep.Complete)
	}
	e.mustExist(t, "right after the rule changed", keepers, true)
	e.mustExist(t, "right after the rule changed", others, false)

	// Replicas reconfigured with --retention 7d; one still on 14d is
	// accepted while the change settles.
	g7 := e.managedGC(t, policyOf(7, 10), nil)
	if _, err := e.managedGC(t, p14, nil).Check(ctx); err != nil {
		t.Errorf("a replica still on --retention 14d during the window: %v", err)
	}
	e.runGC(g7)
	e.advance(t, 20*Day)
	e.mustExist(t, "20 days later", keepers, true)
	if got := g7.LastPass().RetentionDays; got != 7 {
		t.Errorf("GC renews against %dd, want 7d", got)
	}
	if _, err := e.managedGC(t, p14, nil).Check(ctx); !errors.Is(err, ErrDisagree) {
		t.Errorf("--retention 14d after the window: %v, want a refusal", err)
	}
}

// TestRetentionRaised: 7d → 14d while GCS goes on applying the 7-day rule
// for up to a day after the change. GC was down for 2.5 days before the
// change, so the keepers are 6.5 days old: Change renews them against 7d,
// and GC, already reconfigured with --retention 14d, keeps renewing against
// 7d until 48 h after the rule changed, then against 14d. A trace beyond
// keep-N outlives the old 7 days once the old rule stops applying.
func TestRetentionRaised(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	ctx := t.Context()
	p7 := DefaultPolicy()
	if _, err := SetupBucket(ctx, e.gcs, p7, BucketOptions{}, false); err != nil {
		t.Fatal(err)
	}
	e.runGC(e.managedGC(t, p7, nil))
	c := canvas(13)
	var rs []traces.Record
	for range 10 {
		rs = append(rs, e.save(t, c, 0, 1))
	}
	e.advance(t, 4*Day)
	young := e.save(t, c, 0, 2) // keep-N of toplevel 2 is 10: it is a keeper, renewed under both rules
	e.stopGC()
	e.advance(t, 60*time.Hour) // GC down: the keepers of toplevel 1 are 6.5 days old, due

	changedAt := e.now()
	e.emu.E.KeepApplyingRules(e.emu.Bucket, changedAt.Add(24*time.Hour))
	rep := e.change(t, p7, ChangeRequest{Retention: 14 * Day})
	if want := changedAt.Add(SettleWindow); rep.Complete.Before(want) || rep.Complete.After(want.Add(time.Minute)) {
		t.Errorf("raise completes at %s, want 48h after the rule changed (%s)", rep.Complete, want)
	}
	rec, _, err := e.db.Policy(ctx)
	if err != nil || rec.RetentionDays != 14 || rec.PrevRetentionDays != 7 || rec.RuleChangedAt.IsZero() {
		t.Fatalf("record after the raise = %+v, %v", rec, err)
	}
	s, err := e.gcs.BucketSettings(ctx)
	if err != nil || ReadRule(s) != (Rule{Days: 14, Found: true}) {
		t.Fatalf("bucket rule after the raise = %+v, %v; want 14d", s.Lifecycle, err)
	}

	g14 := e.managedGC(t, policyOf(14, 10), nil)
	e.runGC(g14)
	e.advance(t, 24*time.Hour) // the old rule stops applying now
	if got := g14.LastPass().RetentionDays; got != 7 {
		t.Errorf("a day after the raise GC renews against %dd, want 7d (GCS may still apply the old rule)", got)
	}
	e.mustExist(t, "a day after the raise", rs, true)
	e.advance(t, SettleWindow-24*time.Hour+time.Hour)
	if got := g14.LastPass().RetentionDays; got != 14 {
		t.Errorf("49h after the raise GC renews against %dd, want 14d", got)
	}
	e.advance(t, 30*Day)
	e.mustExist(t, "a month after the raise", append(rs, young), true)
}

// TestKeepRaised: a toplevel with 25 traces whose 15 beyond rank 10 are
// older than retention - margin (only the newest 10 were renewed); keep-N
// is raised to 20. None of ranks 11-20 is deleted, ranks 21-25 are.
func TestKeepRaised(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	p := e.setupDefaultBucket(t)
	e.runGC(e.managedGC(t, p, nil))
	c := canvas(14)
	var rs []traces.Record // oldest first: rank 25 … rank 1
	for range 25 {
		rs = append(rs, e.save(t, c, 0, 1))
	}
	e.advance(t, 6*Day) // ranks 1-10 renewed at 5 days; ranks 11-25 are 6 days old

	rep := e.change(t, p, ChangeRequest{Keep: 20})
	if rep.Record.Keep != 20 || rep.Record.KeepPending || rep.Complete.After(e.now()) {
		t.Errorf("keep raise report = %+v; want keep 20, complete", rep)
	}
	g20 := e.managedGC(t, policyOf(7, 20), nil)
	e.runGC(g20)
	e.advance(t, 20*Day)
	e.mustExist(t, "ranks 21-25", rs[:5], false)
	e.mustExist(t, "ranks 1-20", rs[5:], true)

	// Lowering is immediate: ranks 11-20 expire by the rule.
	e.change(t, policyOf(7, 20), ChangeRequest{Keep: 10})
	e.runGC(e.managedGC(t, p, nil))
	e.advance(t, 10*Day)
	e.mustExist(t, "after lowering to 10: ranks 11-20", rs[5:15], false)
	e.mustExist(t, "after lowering to 10: ranks 1-10", rs[15:], true)
}

// blockingRenewer holds every PATCH until release is closed, announcing the
// first one on started.
type blockingRenewer struct {
	renewer
	started chan struct{}
	release chan struct{}
	once    bool
}

func (b *blockingRenewer) SetCustomTime(ctx context.Context, key string, t time.Time, ifMeta int64) (traces.ObjectInfo, error) {
	if !b.once {
		b.once = true
		close(b.started)
	}
	select {
	case <-b.release:
	case <-ctx.Done():
		return traces.ObjectInfo{}, ctx.Err()
	}
	return b.renewer.SetCustomTime(ctx, key, t, ifMeta)
}

// TestKeepRaiseWaitsForOldPasses: a GC pass that read keep 10 is still
// running when keep is raised to 20. Change waits for it before marking the
// toplevels due; otherwise the old pass would set renew_after from its 10
// keepers after the marking, and ranks 11-20 would never be renewed.
func TestKeepRaiseWaitsForOldPasses(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	ctx := t.Context()
	p := e.setupDefaultBucket(t)
	e.runGC(e.managedGC(t, p, nil))
	c := canvas(15)
	var rs []traces.Record
	for range 25 {
		rs = append(rs, e.save(t, c, 0, 1))
	}
	e.advance(t, 4*Day)
	e.stopGC()
	e.advance(t, 2*Day) // all 25 are due under keep 10's view: 6 days old

	br := &blockingRenewer{renewer: e.gcs, started: make(chan struct{}), release: make(chan struct{})}
	old, err := New(br, e.db, p, e.now, nil, nil, Options{Bucket: e.gcs, Backoff: time.Millisecond, Concurrency: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Should the test fail halfway, both goroutines end before the
	// database closes (cleanups run last registered first).
	bg, cancel := context.WithCancel(context.Background())
	oldDone, changeDone := make(chan error, 1), make(chan error, 1)
	t.Cleanup(func() {
		cancel()
		<-oldDone
		<-changeDone
	})
	go func() {
		_, err := old.Pass(bg, false)
		oldDone <- err
	}()
	<-br.started // the old pass read keep 10 and holds the canvas

	go func() {
		_, err := Change(bg, e.gcs, e.db, p, e.now, nil, ChangeRequest{Keep: 20}, ChangeOptions{GC: Options{Backoff: time.Millisecond}})
		changeDone <- err
	}()
	// Change records keep 20, then waits for the old pass: its exclusive
	// request on the pass barrier shows in pg_locks as not granted.
	testutil.WaitFor(t, 10*time.Second, "a waiter on the advisory lock", func() bool {
		var waiting int
		err := e.raw.QueryRow(ctx, `SELECT count(*) FROM pg_locks
			WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting)
		return err == nil && waiting > 0
	})
	if n, err := e.db.MarkedDue(ctx); err != nil || n != 0 {
		t.Errorf("toplevels marked due while an old pass runs = %d, %v; want 0", n, err)
	}
	close(br.release)
	if err := <-oldDone; err != nil {
		t.Fatalf("old pass: %v", err)
	}
	oldDone <- nil // for the cleanup
	if err := <-changeDone; err != nil {
		t.Fatalf("change: %v", err)
	}
	changeDone <- nil
	e.runGC(e.managedGC(t, policyOf(7, 20), nil))
	e.advance(t, 10*Day)
	e.mustExist(t, "ranks 21-25", rs[:5], false)
	e.mustExist(t, "ranks 1-20", rs[5:], true)
}

// TestChangeRefusesAnotherRetentionChangeWhileOneSettles, and re-running
// the same change is harmless.
func TestChangeWhileSettling(t *testing.T) {
	t.Parallel()
	e := newEnv(t, time.Hour)
	ctx := t.Context()
	if _, err := SetupBucket(ctx, e.gcs, DefaultPolicy(), BucketOptions{}, false); err != nil {
		t.Fatal(err)
	}
	e.change(t, DefaultPolicy(), ChangeRequest{Retention: 14 * Day})
	rec1, _, _ := e.db.Policy(ctx)
	rep := e.change(t, DefaultPolicy(), ChangeRequest{Retention: 14 * Day})
	if rep.Record != rec1 {
		t.Errorf("re-run changed the record: %+v → %+v", rec1, rep.Record)
	}
	_, err := Change(ctx, e.gcs, e.db, DefaultPolicy(), e.now, nil, ChangeRequest{Retention: 10 * Day}, ChangeOptions{})
	if !errors.Is(err, ErrDisagree) || !strings.Contains(err.Error(), "in progress") {
		t.Errorf("another change while one settles = %v, want a refusal", err)
	}
	e.advance(t, SettleWindow)
	e.change(t, DefaultPolicy(), ChangeRequest{Retention: 10 * Day})
	if rec, _, _ := e.db.Policy(ctx); rec.RetentionDays != 10 || rec.PrevRetentionDays != 14 {
		t.Errorf("record after the second change = %+v", rec)
	}
}
