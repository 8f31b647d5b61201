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
	if err := db.pool.QueryRow(t.Context(), `SELECT renew_after, deleted_at IS NOT NULL FROM toplevels
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
	if _, err := db.AddLayer(ctx, c, old.ID, old.Generation, 1, []traces.TLID{12}); err != nil {
		t.Fatal(err)
	}
	if at, _ := renewAfter(t, db, c, 12); !at.Equal(old.CustomTime) {
		t.Errorf("toplevel linked by a layer: renew_after = %v, want the trace's customTime %v", at, old.CustomTime)
	}

	// A replace that stops touching toplevel 11 makes it due at once.
	rep := old
	rep.TLIDs, rep.Generation, rep.CustomTime = []traces.TLID{10}, old.Generation+1, base.Add(2*time.Hour)
	if _, _, err := db.ReplaceTrace(ctx, rep); err != nil {
		t.Fatal(err)
	}
	if at, _ := renewAfter(t, db, c, 11); !at.Equal(time.Unix(0, 0)) {
		t.Errorf("toplevel that lost a keeper: renew_after = %v, want the epoch", at)
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
	put(t, db, record(c, 120, 20))
	if _, deleted := renewAfter(t, db, c, 20); deleted {
		t.Error("a trace newer than the deletion left the toplevel deleted")
	}
}
