package index

import (
	"context"
	"flag"
	"fmt"
	"os"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
)

// Every statement this package's tests make the DB send is recorded (see
// queryTracer); after the tests, TestMain holds the ones that do not name
// one canvas to crossCanvas, the allow-list README's "Past one PostgreSQL"
// documents. A statement names one canvas when it compares canvas_id with
// its first parameter, or inserts a row whose canvas_id is its first
// parameter: a distributed PostgreSQL keyed by canvas_id routes it to one
// node.

// crossCanvas is every statement that does not name one canvas, and why.
// match is a fragment of its SQL; name is how README lists it.
var crossCanvas = []struct{ name, match, why string }{
	{"admin lookup by trace ID", "FROM traces WHERE trace_id = $1", "GET /v1/traces/{id}: asks every shard (traces_by_id on each)"},
	{"GC: due canvases", "SELECT DISTINCT canvas_id FROM toplevels", "each pass's discovery; reads toplevels_due on every shard"},
	{"GC repair: unfinished operations", "pending[1] < clock_timestamp()", "each pass's discovery; traces_pending on every shard"},
	{"GC: ended holds", "WHERE hold_until <= $1", "each pass's discovery; traces_hold_until on every shard"},
	{"retention change: mark canvases due", "UPDATE toplevels t SET renew_after = '-infinity'", "retention set, a batch of canvases at a time (a keyset over canvas_id)"},
	{"retention change: toplevels left", "SELECT count(*) FROM toplevels WHERE deleted_at IS NULL AND renew_after = '-infinity'", "retention set's progress count"},
	{"reconcile: canvases with traces", "(SELECT canvas_id FROM traces WHERE canvas_id > $1", "reconcile's keyset over canvases"},
	{"notifications: remove traces", "USING unnest($1::uuid[], $2::uuid[], $3::bigint[])", "one batch of deletions names many canvases: split it by canvas"},
	{"notifications: remove unmatched", "USING unnest($1::uuid[], $2::uuid[]) AS r(canvas_id, trace_id)", "as above, for unmatched requests"},
	{"jobs by ID", "FROM jobs WHERE id = $1", "GET /v1/jobs/{id}: the jobs table is small; keep it on one node"},
	{"jobs: start", "INSERT INTO jobs (", "keyed by job ID (unique per canvas and kind)"},
	{"jobs: claim stale", "UPDATE jobs SET updated_at = $2", "the job runner's takeover scan"},
	{"jobs: update", "UPDATE jobs SET state = $2", "by job ID"},
	{"advisory locks", "advisory_", "GC's canvas claims and the retention barrier: on the node that holds the global tables"},
	{"retention policy record", "retention_policy", "one global row"},
	{"GC pass history", "gc_passes", "a bounded global history"},
	{"notification progress", "notify_progress", "one global row per bucket"},
	{"table sizes", "FROM pg_class", "tracegw status: catalog statistics"},
}

var (
	canvasParam  = regexp.MustCompile(`\bcanvas_id\s*=\s*\$1\b`)
	insertCanvas = regexp.MustCompile(`(?is)^\s*INSERT INTO \w+ \(canvas_id\b[^)]*\)\s*(VALUES\s*\(\s*\$1\b|SELECT\s+\$1\b)`)
	spaces       = regexp.MustCompile(`\s+`)
)

// namesOneCanvas reports whether sql names one canvas (see above).
func namesOneCanvas(sql string) bool {
	return canvasParam.MatchString(sql) || insertCanvas.MatchString(sql)
}

// allowed returns the crossCanvas entry that matches sql, if any.
func allowed(sql string) (string, bool) {
	for _, e := range crossCanvas {
		if strings.Contains(sql, e.match) {
			return e.name, true
		}
	}
	return "", false
}

// recorder is a pgx tracer that records each distinct statement.
type recorder struct {
	mu   sync.Mutex
	seen map[string]bool
}

// add records sql if a method of DB sent it: statements a test sends
// itself through db.pool (fixtures, checks) are not the index's queries.
func (r *recorder) add(sql string) {
	if !fromMethod() || txControl[strings.ToLower(strings.TrimSpace(sql))] {
		return
	}
	r.mu.Lock()
	r.seen[sql] = true
	r.mu.Unlock()
}

// fromMethod reports whether the innermost frame of this package on the
// stack is in a file of the package itself, not in a test file.
func fromMethod() bool {
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(3, pcs)])
	for {
		f, more := frames.Next()
		if strings.HasPrefix(f.Function, "github.com/tracegw/tracegw/internal/index.") && !strings.Contains(f.Function, ".(*recorder).") {
			return !strings.HasSuffix(f.File, "_test.go")
		}
		if !more {
			return false
		}
	}
}

func (r *recorder) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	r.add(d.SQL)
	return ctx
}
func (r *recorder) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (r *recorder) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (r *recorder) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	r.add(d.SQL)
}
func (r *recorder) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
func (r *recorder) TraceCopyFromStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceCopyFromStartData) context.Context {
	r.add("COPY " + d.TableName.Sanitize())
	return ctx
}
func (r *recorder) TraceCopyFromEnd(context.Context, *pgx.Conn, pgx.TraceCopyFromEndData) {}

var recorded = &recorder{seen: map[string]bool{}}

// txControl are the statements pgx sends around a transaction: they read
// no table, and run on whichever node the transaction's statements do.
var txControl = map[string]bool{"begin": true, "commit": true, "rollback": true}

func TestMain(m *testing.M) {
	queryTracer = recorded
	code := m.Run()
	if code == 0 {
		if err := checkQueries(recorded.seen, fullRun()); err != nil {
			fmt.Fprintln(os.Stderr, "FAIL: statements that do not lead with canvas_id:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// fullRun reports whether every test ran (no -run or -skip): only then must
// every allow-list entry have been seen.
func fullRun() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}

// checkQueries compares the statements that do not name one canvas with
// crossCanvas: each must match an entry, and in a full run each entry must
// match a statement (else the list has a stale entry).
func checkQueries(seen map[string]bool, full bool) error {
	var problems []string
	used := map[string]bool{}
	for sql := range seen {
		if namesOneCanvas(sql) {
			continue
		}
		name, ok := allowed(sql)
		if !ok {
			problems = append(problems, "not in the allow-list (index.crossCanvas, README's \"Past one PostgreSQL\"):\n    "+spaces.ReplaceAllString(strings.TrimSpace(sql), " "))
			continue
		}
		used[name] = true
	}
	if full {
		for _, e := range crossCanvas {
			if !used[e.name] {
				problems = append(problems, fmt.Sprintf("allow-list entry %q matched no statement of the tests: remove it, or test the query", e.name))
			}
		}
	}
	slices.Sort(problems)
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("\n  %s", strings.Join(problems, "\n  "))
}

func TestNamesOneCanvas(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		sql  string
		want bool
	}{
		{recentSQL, true},
		{putTraceSQL, true},
		{keepersSQL, true},
		{forgetToplevelSQL, true},
		{`INSERT INTO deleted_canvases (canvas_id, deleted_at) VALUES ($1, $2) ON CONFLICT DO NOTHING`, true},
		{findSQL, false},
		{dueCanvasesSQL, false},
		{removeManyReturningSQL, false},
		{`SELECT FROM traces WHERE canvas_id = $10`, false},
		{`SELECT FROM traces WHERE canvas_id = $2 AND trace_id = $1`, false},
		{`INSERT INTO jobs (id, canvas_id) VALUES ($1, $2)`, false},
	} {
		if got := namesOneCanvas(tc.sql); got != tc.want {
			t.Errorf("namesOneCanvas(%.60q) = %v, want %v", spaces.ReplaceAllString(tc.sql, " "), got, tc.want)
		}
	}
}

// TestCheckQueries: an unlisted cross-canvas statement and, in a full run,
// a stale allow-list entry are both reported.
func TestCheckQueries(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{recentSQL: true, findSQL: true, `SELECT * FROM traces WHERE tlids @> ARRAY[$1::bigint]`: true}
	err := checkQueries(seen, false)
	if err == nil || !strings.Contains(err.Error(), "tlids @> ARRAY") || strings.Contains(err.Error(), "admin lookup") {
		t.Errorf("partial run: %v; want only the unlisted statement", err)
	}
	err = checkQueries(map[string]bool{findSQL: true}, true)
	if err == nil || !strings.Contains(err.Error(), `"GC: due canvases" matched no statement`) {
		t.Errorf("full run: %v; want the stale entries", err)
	}
}

// TestAllowListDocumented: README lists every entry of crossCanvas.
func TestAllowListDocumented(t *testing.T) {
	t.Parallel()
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range crossCanvas {
		if !strings.Contains(string(readme), e.name) {
			t.Errorf("README does not list %q among the statements that do not lead with canvas_id", e.name)
		}
	}
}
