package index

import (
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// TestTraceRowsByWholeKey holds every statement that writes one trace's
// trace_tlids rows (remove, a batch of deletions, hold, release, replace)
// to probing trace_tlids' primary key with all three columns, under custom
// and generic plans. A probe by (canvas_id, trace_id) alone skips the
// middle column and reads every row of the canvas for each trace: a batch
// of 1,000 deletions in a canvas of 50,000 traces took 3 s that way.
func TestTraceRowsByWholeKey(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	// The statistics say the tables are small, as they do in a new
	// deployment (or tracegw dev) before autovacuum catches up with its
	// first burst of saves: the plans must not depend on them.
	if _, err := db.pool.Exec(t.Context(), `ALTER TABLE traces SET (autovacuum_enabled = false);
ALTER TABLE trace_tlids SET (autovacuum_enabled = false);
ANALYZE traces, trace_tlids`); err != nil {
		t.Fatal(err)
	}
	cs, err := seedGrid(t.Context(), db.pool, 3, 100, 100) // 10,000 traces a canvas
	if err != nil {
		t.Fatal(err)
	}
	c := cs[2]
	var ids [][16]byte
	rows, err := db.pool.Query(t.Context(), `SELECT trace_id FROM traces WHERE canvas_id = $1 ORDER BY trace_id LIMIT 6`, [16]byte(c))
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id [16]byte
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if rows.Err() != nil || len(ids) != 6 {
		t.Fatalf("seeded traces: %d, %v", len(ids), rows.Err())
	}
	now := base.Add(time.Hour)
	never := int64(1) << 62
	statements := []struct {
		name string
		sql  string
		args []any
	}{
		{"hold", beginHoldSQL, []any{[16]byte(c), ids[0], now, "why", int64(100), false, nil, ""}},
		{"release", beginReleaseSQL, []any{[16]byte(c), ids[0], nil}},
		{"replace", replaceTraceSQL, []any{[16]byte(c), ids[1], int64(7), []int64{7}, now, never, now, true, now, false}},
		{"remove", removeSQL, []any{[16]byte(c), ids[2], never}},
		{"remove many", removeManyReturningSQL, []any{[][16]byte{[16]byte(c), [16]byte(c)}, [][16]byte{ids[3], ids[4]}, []int64{never, never}}},
	}
	for _, st := range statements {
		for mode, scans := range explain(t, db.pool, st.sql, st.args...) {
			for _, s := range scans {
				if s.RelationName == "trace_tlids" && s.NodeType == "Seq Scan" {
					t.Errorf("%s, %s: sequential scan of trace_tlids", st.name, mode)
				}
				if s.IndexName == "trace_tlids_pkey" && !strings.Contains(s.IndexCond, "tlid =") {
					t.Errorf("%s, %s: trace_tlids_pkey probed by %s, without tlid", st.name, mode, s.IndexCond)
				}
			}
		}
	}
	// They still did their work: trace 2's rows and those of 3 and 4 are
	// gone, trace 1's point at toplevel 7 alone.
	for _, id := range [][16]byte{ids[2], ids[3], ids[4]} {
		if n := count(t, db, `SELECT count(*) FROM trace_tlids WHERE canvas_id = $1 AND trace_id = $2`, [16]byte(c), id); n != 0 {
			t.Errorf("trace %s: %d trace_tlids rows left after its removal", traces.TraceID(id), n)
		}
	}
	var tlids []int64
	if err := db.pool.QueryRow(t.Context(), `SELECT array_agg(tlid) FROM trace_tlids WHERE canvas_id = $1 AND trace_id = $2`, [16]byte(c), ids[1]).Scan(&tlids); err != nil || len(tlids) != 1 || tlids[0] != 7 {
		t.Errorf("replaced trace's toplevels = %v, %v; want [7]", tlids, err)
	}
}
