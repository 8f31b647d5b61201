package index

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/internal/traces"
)

// seedTraceTLIDs COPYs canvases×tlids×perTLID trace_tlids rows (tlid k of
// canvas i gets perTLID traces one minute apart) and returns the canvas IDs.
func seedTraceTLIDs(ctx context.Context, conn interface {
	CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error)
}, canvases, tlids, perTLID int) ([]traces.CanvasID, error) {
	cs := make([]traces.CanvasID, canvases)
	for i := range cs {
		cs[i] = canvasID(byte(i + 1))
	}
	n := canvases * tlids * perTLID
	i := 0
	_, err := conn.CopyFrom(ctx, pgx.Identifier{"trace_tlids"},
		[]string{"canvas_id", "tlid", "trace_id", "ts", "root_tlid", "held"},
		pgx.CopyFromFunc(func() ([]any, error) {
			if i == n {
				return nil, nil
			}
			c, k, j := i/(tlids*perTLID), i/perTLID%tlids, i%perTLID
			i++
			ts := base.Add(time.Duration(j)*time.Minute + time.Duration(k)*time.Millisecond)
			return []any{[16]byte(cs[c]), int64(k + 1), [16]byte(traces.NewTraceID(ts)), ts, int64(k + 1), j%97 == 0}, nil
		}))
	return cs, err
}

// planNode is the part of EXPLAIN (FORMAT JSON) the test looks at.
type planNode struct {
	NodeType      string     `json:"Node Type"`
	ScanDirection string     `json:"Scan Direction"`
	IndexName     string     `json:"Index Name"`
	RelationName  string     `json:"Relation Name"`
	HeapFetches   *int       `json:"Heap Fetches"`
	Plans         []planNode `json:"Plans"`
}

func (p planNode) walk(f func(planNode)) {
	f(p)
	for _, c := range p.Plans {
		c.walk(f)
	}
}

// TestRecentPlan checks that Recent's exact SQL is one index-only backward
// scan of trace_tlids' primary key: no sort, no heap fetch, no other scan,
// with custom and generic plans (pgx prepares statements, and PostgreSQL
// switches to a generic plan after five executions).
func TestRecentPlan(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	ctx := t.Context()
	cs, err := seedTraceTLIDs(ctx, db.pool, 10, 1000, 10) // 100,000 rows
	if err != nil {
		t.Fatalf("seed: %v", err)
	}
	if _, err := db.pool.Exec(ctx, "VACUUM ANALYZE trace_tlids"); err != nil {
		t.Fatal(err)
	}
	conn, err := db.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, mode := range []string{"force_custom_plan", "force_generic_plan"} {
		if _, err := conn.Exec(ctx, "SET plan_cache_mode = "+mode); err != nil {
			t.Fatal(err)
		}
		var out []struct{ Plan planNode }
		var raw []byte
		if err := conn.QueryRow(ctx, "EXPLAIN (ANALYZE, FORMAT JSON) "+recentSQL, [16]byte(cs[3]), int64(500), int64(10)).Scan(&raw); err != nil {
			t.Fatalf("%s: explain: %v", mode, err)
		}
		if err := json.Unmarshal(raw, &out); err != nil || len(out) != 1 {
			t.Fatalf("%s: decode plan: %v\n%s", mode, err, raw)
		}
		var scans []planNode
		out[0].Plan.walk(func(p planNode) {
			if p.RelationName != "" || p.IndexName != "" || p.NodeType == "Sort" {
				scans = append(scans, p)
			}
		})
		if len(scans) != 1 || scans[0].NodeType != "Index Only Scan" || scans[0].ScanDirection != "Backward" ||
			scans[0].IndexName != "trace_tlids_pkey" || scans[0].HeapFetches == nil || *scans[0].HeapFetches != 0 {
			t.Errorf("%s: plan is not a single Index Only Scan Backward on trace_tlids_pkey without heap fetches:\n%s", mode, raw)
		}
	}
	if _, err := conn.Exec(ctx, "RESET plan_cache_mode"); err != nil {
		t.Fatal(err)
	}
	got, err := db.Recent(ctx, cs[3], 500, 10)
	if err != nil || len(got) != 10 || !got[0].Timestamp.After(got[9].Timestamp) {
		t.Errorf("Recent on seeded data = %d items, %v", len(got), err)
	}
}
