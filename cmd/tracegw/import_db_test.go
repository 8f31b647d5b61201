package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// readmeExport returns the schema and the export query of the README's
// "From the tables of a DB-era platform": the first sql block after that
// heading, and the psql here-document.
func readmeExport(t *testing.T) (schema, query string) {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "### From the tables of a DB-era platform")
	if i < 0 {
		t.Fatal("README has no section \"From the tables of a DB-era platform\"")
	}
	s = s[i:]
	between := func(s, from, to string) string {
		a := strings.Index(s, from)
		if a < 0 {
			t.Fatalf("README's export section has no %q", from)
		}
		rest := s[a+len(from):]
		z := strings.Index(rest, to)
		if z < 0 {
			t.Fatalf("README's export section: %q is not closed by %q", from, to)
		}
		return rest[:z]
	}
	return between(s, "```sql\n", "```"), between(s, "<<'SQL'\n", "\nSQL\n")
}

// exportDB runs query on the database at url and returns its rows, one a
// line, as psql -At prints them.
func exportDB(t *testing.T, url, query string) []byte {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(t.Context(), query)
	if err != nil {
		t.Fatalf("the README's export query: %v", err)
	}
	var out bytes.Buffer
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Fatal(err)
		}
		out.WriteString(line + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("the README's export query: %v", err)
	}
	return out.Bytes()
}

// fillDBEra creates the README's tables on the database at url and fills
// them: three handlers and a function on one canvas, events of each
// handler (random v4 trace IDs, one v7 ID kept as is, one event that
// matched no handler), and function results, two of one call. It returns
// how many events have a handler, and the v7 trace ID.
func fillDBEra(t *testing.T, url, schema string, canvas string, now time.Time) (int, string) {
	t.Helper()
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, schema); err != nil {
		t.Fatalf("the README's schema: %v", err)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(`INSERT INTO toplevel_oplists (canvas_id, tlid, tipe, module, name, modifier) VALUES
	  ($1, 9007199254740993, 'handler', 'HTTP', '/users', 'GET'),
	  ($1, 2, 'handler', 'HTTP', '/users', 'POST'),
	  ($1, 3, 'handler', 'CRON', 'daily', '_'),
	  ($1, 18446744073709551, 'user_function', NULL, NULL, NULL)`, canvas)
	n := 0
	for i := range 30 {
		route := [][3]string{{"HTTP", "/users", "GET"}, {"HTTP", "/users", "POST"}, {"CRON", "daily", "_"}}[i%3]
		ts := now.Add(-time.Duration(i) * 7 * time.Hour).Add(time.Duration(i) * 123 * time.Microsecond)
		tid := fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", 0x9e3779b9*uint32(i+1), i, i*7%4096, 0x8000|i*13, uint64(i)*0x9e3779b97f4a7c15>>16)
		value := fmt.Sprintf(`{"request": {"body": {"n": %d, "big": 12345678901234567890}, "headers": {"x": "y"}}, "event": null}`, i)
		exec(`INSERT INTO stored_events_v2 VALUES ($1, $2, $3, $4, $5, $6, $7)`, canvas, route[0], route[1], route[2], tid, ts, value)
		n++
		exec(`INSERT INTO function_results_v3 VALUES ($1, $2, 18446744073709551, 'Int::add', 42, 'h1', 1, $3, $4)`,
			canvas, tid, ts.Add(time.Millisecond), fmt.Sprintf("%d", i))
		if i == 0 { // a later result of the same call wins
			exec(`INSERT INTO function_results_v3 VALUES ($1, $2, 18446744073709551, 'Int::add', 42, 'h1', 1, $3, '"later"')`,
				canvas, tid, ts.Add(2*time.Millisecond))
			exec(`INSERT INTO function_results_v3 VALUES ($1, $2, 2, 'DB::set', 7, 'h2', 0, $3, '{"ok": true}')`,
				canvas, tid, ts.Add(3*time.Millisecond))
		}
	}
	v7 := traces.NewTraceID(now.Add(-time.Hour)).String()
	exec(`INSERT INTO stored_events_v2 VALUES ($1, 'HTTP', '/users', 'GET', $2, $3, '{"request": {}}')`, canvas, v7, now.Add(-time.Hour))
	n++
	exec(`INSERT INTO stored_events_v2 VALUES ($1, 'HTTP', '/nothing', 'GET', gen_random_uuid(), $2, '{"request": {}}')`, canvas, now)
	return n, v7
}

// TestImportFromDBExport creates the README's DB-era tables on a fixture
// database, fills them, runs exactly the README's export query and imports
// its output into a running dev: every event with a handler is imported,
// with its input, its function results (the latest of each call) and the
// toplevels they touch; exporting again yields the same bytes, and that
// import finds everything already present.
func TestImportFromDBExport(t *testing.T) {
	dt := startDevTest(t, testutil.PG(t))
	schema, query := readmeExport(t)
	const canvas = "7d3f5a1c-0000-4000-8000-00000000db01"
	now := dt.d.emu.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	fixture := testutil.PG(t)
	events, v7 := fillDBEra(t, fixture, schema, canvas, now)

	out := exportDB(t, fixture, query)
	if again := exportDB(t, fixture, query); !bytes.Equal(out, again) {
		t.Fatal("exporting twice gave different output")
	}
	path := filepath.Join(t.TempDir(), "export.ndjson")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--url", dt.url, "--token", dt.d.token, path}
	code, stdout, stderr := runImportCmd(t, args...)
	t.Logf("import of the export:\n%s", stdout)
	if want := fmt.Sprintf("imported %d, already present 0, conflicting 0, invalid 0\n", events); code != 0 || !strings.HasPrefix(stdout, want) {
		t.Fatalf("import: exit %d, stdout %q, stderr %q; want %q", code, stdout, stderr, want)
	}
	if code, stdout, _ := runImportCmd(t, args...); code != 0 || !strings.HasPrefix(stdout, fmt.Sprintf("imported 0, already present %d,", events)) {
		t.Errorf("second import: exit %d, stdout %q; want everything already present", code, stdout)
	}

	// GET /users: event 0 is the newest of all (the export's first line),
	// then the event with a v7 ID, kept as is.
	c := client.New(dt.url, dt.d.token)
	defer c.Close()
	list, err := c.Recent(t.Context(), client.CanvasID(canvas), 9007199254740993, 100)
	if err != nil || len(list) != 11 {
		t.Fatalf("GET /users lists %d traces, %v; want 11", len(list), err)
	}
	first := strings.SplitN(string(out), "\n", 2)[0]
	if !strings.Contains(first, `"traceID" : "`+string(list[0].ID)+`"`) {
		t.Errorf("the newest trace %s is not the export's first line %s", list[0].ID, first)
	}
	if list[1].ID != client.TraceID(v7) {
		t.Errorf("second newest = %s, want the event whose v7 ID %s is kept", list[1].ID, v7)
	}
	tr, _, err := c.Get(t.Context(), client.CanvasID(canvas), list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(tr.TLIDs, []client.TLID{2, 18446744073709551, 9007199254740993}) && !slices.Equal(tr.TLIDs, []client.TLID{18446744073709551, 2, 9007199254740993}) {
		t.Errorf("tlids = %v; want the results' toplevels and the root", tr.TLIDs)
	}
	if len(tr.Input) != 2 || tr.Input[0].Name != "event" || tr.Input[1].Name != "request" {
		t.Errorf("input = %+v; want event and request, in name order", tr.Input)
	}
	var got []string
	for _, r := range tr.FunctionResults {
		got = append(got, fmt.Sprintf("%d/%d/%s/%s/%d/%x", r.TLID, r.ExprID, r.FnName, r.ArgHash, r.HashVersion, []byte(r.Value)))
	}
	later, _ := client.EncodeValue("later")
	ok, _ := client.EncodeValue(map[string]any{"ok": true})
	want := []string{fmt.Sprintf("2/7/DB::set/h2/0/%x", []byte(ok)), fmt.Sprintf("18446744073709551/42/Int::add/h1/1/%x", []byte(later))}
	if !slices.Equal(got, want) {
		t.Errorf("function results = %v, want %v", got, want)
	}
	if id := list[0].ID; id.Time().IsZero() || id.Time().Sub(tr.Timestamp).Abs() > time.Millisecond {
		t.Errorf("trace ID %s embeds %s, want the event's time %s", id, id.Time(), tr.Timestamp)
	}
}
