package index

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/internal/traces"
)

// The policy record is written first by whoever comes first (InitPolicy)
// and then only by a writer that read the current version (SavePolicy).
func TestPolicyRecord(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	if _, found, err := db.Policy(ctx); err != nil || found {
		t.Fatalf("Policy on a fresh database = %v, %v", found, err)
	}
	first := PolicyRecord{RetentionDays: 7, Keep: 10, UpdatedAt: base}
	got, err := db.InitPolicy(ctx, first)
	if err != nil || !cmp.Equal(got, first) {
		t.Fatalf("InitPolicy = %+v, %v; want %+v", got, err, first)
	}
	if got, err := db.InitPolicy(ctx, PolicyRecord{RetentionDays: 14, Keep: 20, UpdatedAt: base.Add(time.Hour)}); err != nil || !cmp.Equal(got, first) {
		t.Errorf("a second InitPolicy = %+v, %v; want the first record", got, err)
	}
	next := PolicyRecord{RetentionDays: 14, PrevRetentionDays: 7, RuleChangedAt: base.Add(time.Minute),
		RetentionSettlesAt: base.Add(48 * time.Hour), Keep: 20, PrevKeep: 10, KeepChangedAt: base, KeepPending: true,
		UpdatedAt: base.Add(time.Minute + 1234*time.Nanosecond)}
	if err := db.SavePolicy(ctx, next, time.Time{}); !errors.Is(err, traces.ErrPreconditionFailed) {
		t.Errorf("SavePolicy expecting no record = %v, want ErrPreconditionFailed", err)
	}
	if err := db.SavePolicy(ctx, next, base.Add(time.Second)); !errors.Is(err, traces.ErrPreconditionFailed) {
		t.Errorf("SavePolicy with a stale version = %v, want ErrPreconditionFailed", err)
	}
	if err := db.SavePolicy(ctx, next, first.UpdatedAt); err != nil {
		t.Fatalf("SavePolicy: %v", err)
	}
	got, found, err := db.Policy(ctx)
	next.UpdatedAt = next.UpdatedAt.Truncate(time.Microsecond)
	if err != nil || !found || !cmp.Equal(got, next) {
		t.Errorf("Policy = %+v, %v, %v; want %+v", got, found, err, next)
	}
	// The version compares at the database's precision.
	again := next
	again.Keep, again.KeepPending, again.UpdatedAt = 20, false, base.Add(time.Hour)
	if err := db.SavePolicy(ctx, again, next.UpdatedAt.Add(567*time.Nanosecond)); err != nil {
		t.Errorf("SavePolicy with the version read: %v", err)
	}
}

// The pass history stays bounded and keeps the newest successful pass
// however many failures followed it.
func TestPassHistoryBounded(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	pass := func(i int, outcome string) PassRecord {
		p := PassRecord{Replica: fmt.Sprintf("r%d", i%3), StartedAt: base.Add(time.Duration(i) * time.Hour),
			EndedAt: base.Add(time.Duration(i)*time.Hour + time.Minute), Outcome: outcome, RetentionDays: 7, Keep: 10,
			Margin: 48 * time.Hour, Interval: time.Hour, Canvases: i, Renewed: 2 * i}
		if outcome == PassOK {
			p.KeeperDeadline = p.StartedAt.Add(p.Margin)
		}
		return p
	}
	if _, found, _, okFound, err := db.PassHistory(ctx); err != nil || found || okFound {
		t.Fatalf("empty history: %v %v %v", found, okFound, err)
	}
	for i := range 5 {
		if err := db.RecordPass(ctx, pass(i, PassOK)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 5; i < 5+3*passHistory; i++ {
		p := pass(i, PassFailed)
		p.Error = "boom"
		if err := db.RecordPass(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.pool.QueryRow(ctx, `SELECT count(*) FROM gc_passes`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n > passHistory+1 {
		t.Errorf("history holds %d passes, want at most %d", n, passHistory+1)
	}
	last, found, ok, okFound, err := db.PassHistory(ctx)
	if err != nil || !found || !okFound {
		t.Fatalf("PassHistory: %v %v %v", found, okFound, err)
	}
	if want := pass(4+3*passHistory, PassFailed); last.StartedAt != want.StartedAt || last.Error != "boom" || last.Outcome != PassFailed {
		t.Errorf("last = %+v", last)
	}
	if diff := cmp.Diff(pass(4, PassOK), ok); diff != "" {
		t.Errorf("newest successful pass (-want +got):\n%s", diff)
	}
}

// MarkCanvasesDue marks the live toplevels of every canvas, batch by batch,
// and MarkedDue counts those no pass has processed.
func TestMarkCanvasesDue(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	for i := range 5 {
		c := canvasID(byte(i + 1))
		put(t, db, record(c, 0, 1))
		put(t, db, record(c, 1, 2))
	}
	if err := db.ForgetToplevel(ctx, canvasID(1), 2, base.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	var after traces.CanvasID
	var canvases, toplevels int64
	for range 10 {
		last, nc, nt, done, err := db.MarkCanvasesDue(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if done {
			break
		}
		if nc > 2 {
			t.Errorf("a batch covered %d canvases, want at most 2", nc)
		}
		after, canvases, toplevels = last, canvases+nc, toplevels+nt
	}
	if canvases != 5 || toplevels != 9 {
		t.Errorf("marked %d toplevels of %d canvases, want 9 of 5 (the deleted one stays)", toplevels, canvases)
	}
	if n, err := db.MarkedDue(ctx); err != nil || n != 9 {
		t.Errorf("MarkedDue = %d, %v; want 9", n, err)
	}
	due, err := db.DueCanvases(ctx, base.Add(-100*24*time.Hour))
	if err != nil || len(due) != 5 {
		t.Errorf("due canvases = %v, %v; want all 5", due, err)
	}
	// A pass that read the marked toplevels (rev 1: the marking bumped it).
	if err := db.SetRenewAfter(ctx, canvasID(3), []RenewAfter{{TLID: 1, Rev: 1, Value: base}, {TLID: 2, Rev: 1, Value: base}}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if n, err := db.MarkedDue(ctx); err != nil || n != 7 {
		t.Errorf("MarkedDue after a pass over one canvas = %d, %v; want 7", n, err)
	}
}
