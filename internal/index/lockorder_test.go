package index

import (
	"sync"
	"testing"

	"github.com/tracegw/tracegw/internal/traces"
)

// TestToplevelLockOrder runs the writers of toplevels rows against each
// other on one canvas's rows, each given its rows in the order most likely to
// invert another's: GC's SetRenewAfter with its verdicts in descending tlid
// order, replaces that link and drop half the toplevels (the upsert and the
// dropped-keeper update of one statement), and raising the canvas's keep (which marks every toplevel due). PostgreSQL answers a lock cycle
// with 40P01 after deadlock_timeout, which the callers would see as
// unavailable: none of them may fail.
func TestToplevelLockOrder(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	c := canvasID(1)
	const n = 40
	all := make([]traces.TLID, n)
	for i := range all {
		all[i] = traces.TLID(i + 1)
	}
	half := all[:n/2]
	// Two traces that touch every toplevel, so that every row exists.
	a, b := record(c, 0, 1, all[1:]...), record(c, 1, 1, all[1:]...)
	put(t, db, a, b)

	const rounds = 60
	var wg sync.WaitGroup
	errs := make(chan error, 4*rounds)
	wg.Go(func() { // GC
		for range rounds {
			rows, err := db.pool.Query(ctx, `SELECT tlid, rev FROM toplevels WHERE canvas_id = $1 ORDER BY tlid DESC`, [16]byte(c))
			if err != nil {
				errs <- err
				return
			}
			var vs []RenewAfter
			for rows.Next() {
				var v RenewAfter
				if err := rows.Scan(&v.TLID, &v.Rev); err != nil {
					errs <- err
					return
				}
				v.Value = base
				vs = append(vs, v)
			}
			if err := rows.Err(); err != nil {
				errs <- err
				return
			}
			if err := db.SetRenewAfter(ctx, c, vs, 0); err != nil {
				errs <- err
			}
		}
	})
	for w, r := range []traces.Record{a, b} { // two replacers, out of step
		wg.Go(func() {
			for i := range rounds {
				r.Generation++
				r.TLIDs = all
				if (i+w)%2 == 0 {
					r.TLIDs = half
				}
				if _, err := db.ReplaceTrace(ctx, r, base, Token{}); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Go(func() { // keep raised and lowered
		for i := range rounds {
			if _, err := db.SetCanvasKeep(ctx, c, 5+i%2, 3, base); err != nil {
				errs <- err
			}
		}
	})
	wg.Wait()
	close(errs)
	var failed []error
	for err := range errs {
		failed = append(failed, err)
	}
	if len(failed) > 0 {
		t.Fatalf("%d of the concurrent toplevel writes failed, e.g. %v", len(failed), failed[0])
	}
	// The rows are still consistent: each toplevel row exists once.
	if got := count(t, db, `SELECT count(*) FROM toplevels WHERE canvas_id = $1`, [16]byte(c)); got != n {
		t.Errorf("%d toplevels rows, want %d", got, n)
	}
}
