package index

import (
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// renewAfter reads a toplevel's renew_after and whether it is deleted.
func renewAfter(t *testing.T, db *DB, c traces.CanvasID, tlid traces.TLID) (time.Time, bool) {
	t.Helper()
	var at time.Time
	var deleted bool
	if err := db.pool.QueryRow(t.Context(), `SELECT CASE WHEN renew_after = '-infinity' THEN 'epoch' ELSE renew_after END,
		deleted_at IS NOT NULL FROM toplevels
		WHERE canvas_id = $1 AND tlid = $2`, [16]byte(c), int64(tlid)).Scan(&at, &deleted); err != nil {
		t.Fatalf("toplevel %d: %v", tlid, err)
	}
	return at, deleted
}

// Every write that links a trace to a toplevel keeps renew_after at or below
// that trace's customTime, or GC would look at the toplevel too late and
// the bucket could delete a keeper.
func TestRenewAfterNeverAboveAKeeper(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	c := canvasID(1)

	// A save retried long after a crash indexes the object's old customTime.
	fresh := record(c, 3600, 10)
	put(t, db, fresh)
	old := record(c, 0, 10, 11)
	put(t, db, old)
	if at, _ := renewAfter(t, db, c, 10); !at.Equal(old.CustomTime) {
		t.Errorf("after an old trace's save renew_after = %v, want %v", at, old.CustomTime)
	}

	// A layer links an old trace to a new toplevel: due by the trace's
	// customTime, not the layer's.
	rec, tok, err := db.ReserveLayer(ctx, c, old.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.CommitLayer(ctx, c, old.ID, rec.Generation, []traces.TLID{12}, tok, false, base.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if at, _ := renewAfter(t, db, c, 12); !at.Equal(old.CustomTime) {
		t.Errorf("toplevel linked by a layer: renew_after = %v, want the trace's customTime %v", at, old.CustomTime)
	}

	// A replace that stops touching toplevel 11 makes it due at once.
	rep := old
	rep.TLIDs, rep.Generation, rep.CustomTime = []traces.TLID{10}, old.Generation+1, base.Add(2*time.Hour)
	if _, err := db.ReplaceTrace(ctx, rep, rep.CustomTime, Token{}); err != nil {
		t.Fatal(err)
	}
	if at, _ := renewAfter(t, db, c, 11); !at.Equal(time.Unix(0, 0)) {
		t.Errorf("toplevel that lost a keeper: renew_after = %v, want -infinity (shown as the epoch)", at)
	}

	// A deleted toplevel stays deleted for traces older than the deletion
	// and is live again once a newer one arrives.
	if err := db.ForgetToplevel(ctx, c, 20, base.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	put(t, db, record(c, 30, 20))
	if _, deleted := renewAfter(t, db, c, 20); !deleted {
		t.Error("a trace older than the deletion revived the toplevel")
	}
	put(t, db, record(c, 60+int(ReviveGrace/time.Second)+1, 20))
	if at, deleted := renewAfter(t, db, c, 20); deleted || !at.Equal(time.Unix(0, 0)) {
		t.Errorf("a trace newer than the deletion: deleted %v, renew_after %v; want live and due at once", deleted, at)
	}
}

// Sequence 7 of the keeper-safety review: an execution in flight when its
// handler was deleted is saved after the deletion, by the gateway's clock,
// but its own timestamp is from before (or within the clock skew of) the
// deletion. It must not revive the toplevel, whose latest traces would then
// be kept for ever.
func TestRevivalByAnInFlightTraceIsRefused(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	deletedAt := base.Add(time.Hour)
	if err := db.ForgetToplevel(t.Context(), c, 7, deletedAt); err != nil {
		t.Fatal(err)
	}
	for _, offset := range []time.Duration{-time.Second, 0, ReviveGrace / 2, ReviveGrace} {
		r := record(c, int((time.Hour+offset)/time.Second), 7)
		// Saved (customTime) after the deletion, as the in-flight save is.
		r.CustomTime = deletedAt.Add(time.Minute)
		if _, err := db.PutTrace(t.Context(), r, r.CustomTime); err != nil {
			t.Fatal(err)
		}
		if _, deleted := renewAfter(t, db, c, 7); !deleted {
			t.Fatalf("a trace %s after the deletion (within the grace) revived the toplevel", offset)
		}
	}
}

// A toplevel deleted twice without a revival between: a trace that ran
// between the two deletions and arrives after the second must not revive
// it (the editor deleted it after that execution). The second deletion
// used to leave the first one's time, and such a trace revived the
// toplevel, whose old traces GC then renewed for ever. History seed 1100
// found it (expire).
func TestRepeatedForgetCountsTheLastDeletion(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	first, second := base.Add(time.Hour), base.Add(3*time.Hour)
	for _, at := range []time.Time{first, second} {
		if err := db.ForgetToplevel(t.Context(), c, 7, at); err != nil {
			t.Fatal(err)
		}
	}
	between := record(c, int((2*time.Hour)/time.Second), 7) // ran after the first deletion, before the second
	between.CustomTime = second.Add(time.Minute)
	if _, err := db.PutTrace(t.Context(), between, between.CustomTime); err != nil {
		t.Fatal(err)
	}
	if _, deleted := renewAfter(t, db, c, 7); !deleted {
		t.Fatal("a trace that ran before the last deletion revived the toplevel")
	}
	after := record(c, int((3*time.Hour+ReviveGrace+time.Second)/time.Second), 7)
	if _, err := db.PutTrace(t.Context(), after, after.CustomTime); err != nil {
		t.Fatal(err)
	}
	if _, deleted := renewAfter(t, db, c, 7); deleted {
		t.Error("a trace that ran after the last deletion did not revive the toplevel")
	}
}
