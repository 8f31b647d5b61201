package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/internal/importer"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// writeNDJSON writes n traces of canvas to a file in dir, newest first:
// line i is toplevel 100+i%tops, i minutes older than the previous line of
// its toplevel, starting an hour ago. It returns the path and the IDs.
func writeNDJSON(t *testing.T, dir, canvas string, n, tops int, start time.Time) (string, []string) {
	t.Helper()
	var b bytes.Buffer
	ids := make([]string, n)
	for i := range n {
		ts := start.Add(-time.Duration(i) * time.Minute).UTC().Truncate(time.Millisecond)
		ids[i] = traces.NewTraceID(ts).String()
		root := 100 + i%tops
		fmt.Fprintf(&b, `{"canvasID":%q,"traceID":%q,"rootTLID":"%d","timestamp":%q,"input":[["request",{"body":"line %d","n":%d}]],`+
			`"functionResults":[{"tlid":"%d","exprID":"%d","fnName":"Int.add","hashVersion":1,"argHash":"h%d","value":%d}]}`+"\n",
			canvas, ids[i], root, ts.Format(time.RFC3339Nano), i, i, root, i%7, i, i)
	}
	path := filepath.Join(dir, "traces.ndjson")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, ids
}

// countTraces is how many traces the index holds for canvas.
func (dt *devTest) countTraces(canvas string) int {
	dt.t.Helper()
	c, err := traces.ParseCanvasID(canvas)
	if err != nil {
		dt.t.Fatal(err)
	}
	conn, err := pgx.Connect(dt.t.Context(), dt.d.dbURL)
	if err != nil {
		dt.t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(dt.t.Context(), `SELECT count(*) FROM traces WHERE canvas_id = $1`, [16]byte(c)).Scan(&n); err != nil {
		dt.t.Fatal(err)
	}
	return n
}

// runImportCmd runs `tracegw import` with args and returns its output.
func runImportCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(t.Context(), append([]string{"import"}, args...), &o, &e)
	return code, o.String(), e.String()
}

// TestImportTwice imports a 10,000-trace file into a running dev through
// the command, then again: the second run imports nothing (the gateway
// answers every line "already present"), and the index holds each trace
// once. The summary lines carry the throughput.
func TestImportTwice(t *testing.T) {
	dt := startDevTest(t, testutil.PG(t))
	const canvas = "7d3f5a1c-0000-4000-8000-00000000a001"
	path, _ := writeNDJSON(t, t.TempDir(), canvas, 10_000, 100, time.Now().Add(-time.Hour))
	args := []string{"--url", dt.url, "--token", dt.d.token, "--concurrency", "8", path}

	code, out, errOut := runImportCmd(t, args...)
	t.Logf("first run:\n%s", out)
	if code != 0 || !strings.HasPrefix(out, "imported 10000, already present 0, conflicting 0, invalid 0\n") {
		t.Fatalf("first import: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if _, err := os.Stat(path + ".checkpoint"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkpoint after a complete run: %v; want it removed", err)
	}
	code, out, errOut = runImportCmd(t, args...)
	t.Logf("second run:\n%s", out)
	if code != 0 || !strings.HasPrefix(out, "imported 0, already present 10000, conflicting 0, invalid 0\n") {
		t.Fatalf("second import: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	if n := dt.countTraces(canvas); n != 10_000 {
		t.Errorf("index holds %d traces of the canvas, want 10000", n)
	}
}

// countingSaver counts what each trace ID is sent, around the real client.
type countingSaver struct {
	*client.Client
	mu   sync.Mutex
	sent map[client.TraceID]int
}

func (s *countingSaver) Import(ctx context.Context, c client.CanvasID, t *client.Trace) (client.Saved, error) {
	s.mu.Lock()
	s.sent[t.ID]++
	s.mu.Unlock()
	return s.Client.Import(ctx, c, t)
}

// TestImportResumes interrupts an import after 1,000 finished lines and
// resumes it from its checkpoint: every line is sent exactly once over the
// two runs (nothing twice, nothing skipped), the counts add up, and the
// gateway holds every trace.
func TestImportResumes(t *testing.T) {
	dt := startDevTest(t, testutil.PG(t))
	const canvas = "7d3f5a1c-0000-4000-8000-00000000a002"
	dir := t.TempDir()
	path, ids := writeNDJSON(t, dir, canvas, 3_000, 30, time.Now().Add(-time.Hour))
	// A few lines that are not imported, so the summary's problems survive
	// the resumption too.
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "\n{\"canvasID\":%q,\"rootTLID\":\"1\"}\n", canvas)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	in, err := importer.Identify(path)
	if err != nil {
		t.Fatal(err)
	}
	cl := client.New(dt.url, dt.d.token)
	defer cl.Close()
	saver := &countingSaver{Client: cl, sent: map[client.TraceID]int{}}
	opts := importer.Options{Concurrency: 8, Checkpoint: path + ".checkpoint", Input: in, SaveEvery: 100}

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	first := opts
	first.OnProgress = func(p importer.Progress) {
		if p.Lines >= 1000 {
			cancel()
		}
	}
	file, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	s1, err := importer.Run(ctx, file, saver, first)
	file.Close()
	if !errors.Is(err, importer.ErrInterrupted) || s1.Complete {
		t.Fatalf("interrupted run = %+v, %v; want ErrInterrupted", s1, err)
	}
	if _, err := os.Stat(opts.Checkpoint); err != nil {
		t.Fatalf("no checkpoint after the interruption: %v", err)
	}
	t.Logf("interrupted after %d imported, %d sent", s1.Imported, s1.Sent)

	file, err = os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	s2, err := importer.Run(t.Context(), file, saver, opts)
	if err != nil || !s2.Complete || !s2.Resumed {
		t.Fatalf("resumed run = %+v, %v; want complete", s2, err)
	}
	var out bytes.Buffer
	s2.Write(&out)
	t.Logf("resumed run:\n%s", out.String())
	if s2.Imported != 3000 || s2.Present != 0 || s2.Invalid != 1 || len(s2.Invalids) != 1 || s2.Invalids[0].Line != 3002 {
		t.Errorf("summary after resuming = %+v; want 3000 imported, none present, line 3002 invalid", s2.Counts)
	}
	if s1.Sent+s2.Sent != 3000 {
		t.Errorf("sent %d + %d lines over the two runs, want 3000", s1.Sent, s2.Sent)
	}
	for _, id := range ids {
		if n := saver.sent[client.TraceID(id)]; n != 1 {
			t.Errorf("trace %s sent %d times, want once", id, n)
		}
	}
	if n := dt.countTraces(canvas); n != 3000 {
		t.Errorf("index holds %d traces, want 3000", n)
	}
	if _, err := os.Stat(opts.Checkpoint); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("checkpoint after the complete run: %v; want it removed", err)
	}
}

// TestImportAppliesThePolicy imports, newest first and one at a time,
// fourteen traces of each of two toplevels, seven of them ten days old and
// seven a day old. After the next GC step the traces younger than
// retention are all there, and of the old ones exactly those among the
// newest ten of their toplevel: the others were not kept for having been
// imported.
func TestImportAppliesThePolicy(t *testing.T) {
	dt := startDevTest(t, testutil.PG(t))
	const canvas = "7d3f5a1c-0000-4000-8000-00000000a003"
	now := dt.d.emu.Now()
	var b strings.Builder
	want := map[string]bool{}
	for top := range 2 {
		for i := range 14 {
			age := 24*time.Hour + time.Duration(i)*time.Minute
			if i >= 7 {
				age = 10*24*time.Hour + time.Duration(i)*time.Minute
			}
			ts := now.Add(-age).UTC().Truncate(time.Millisecond)
			id := traces.NewTraceID(ts).String()
			want[id] = i < 10 // the young seven, and three old keepers
			fmt.Fprintf(&b, `{"canvasID":%q,"traceID":%q,"rootTLID":"%d","timestamp":%q}`+"\n", canvas, id, 500+top, ts.Format(time.RFC3339Nano))
		}
	}
	path := filepath.Join(t.TempDir(), "old.ndjson")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runImportCmd(t, "--url", dt.url, "--token", dt.d.token, "--concurrency", "1", path); code != 0 {
		t.Fatalf("import: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	sum := dt.advance("1h")
	if sum.Deleted != 8 {
		t.Errorf("advance deleted %d objects, want the 8 old non-keepers (%+v)", sum.Deleted, sum)
	}
	objs := dt.objects(canvas)
	for id, kept := range want {
		c, _ := traces.ParseCanvasID(canvas)
		tid, _ := traces.ParseTraceID(id)
		if got := objs[traces.TraceKey(c, tid)]; got != kept {
			t.Errorf("trace %s exists = %v, want %v", id, got, kept)
		}
	}
}
