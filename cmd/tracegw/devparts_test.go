package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/testutil"
)

// shellWords splits an export line as a POSIX shell would for the quoting
// shellQuote produces: bare words, and single-quoted ones in which a quote
// is written as quote, backslash, quote, quote.
func shellWords(t *testing.T, line string) []string {
	t.Helper()
	var (
		words []string
		cur   strings.Builder
		in    bool // inside '...'
		have  bool
	)
	for i := 0; i < len(line); i++ {
		switch c := line[i]; {
		case in && c == '\'':
			in = false
		case in:
			cur.WriteByte(c)
		case c == '\'':
			in, have = true, true
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			have = true
		case c == ' ':
			if have {
				words = append(words, cur.String())
			}
			cur.Reset()
			have = false
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if in {
		t.Fatalf("unterminated quote in %q", line)
	}
	if have {
		words = append(words, cur.String())
	}
	return words
}

// exportsOf returns the variables the export lines of a banner set.
func exportsOf(t *testing.T, banner string) map[string]string {
	t.Helper()
	env := map[string]string{}
	for line := range strings.SplitSeq(banner, "\n") {
		w := shellWords(t, strings.TrimSpace(line))
		if len(w) == 0 || w[0] != "export" {
			continue
		}
		for _, kv := range w[1:] {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				t.Fatalf("export %q has no value", kv)
			}
			env[k] = v
		}
	}
	return env
}

func TestShellQuote(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"traces", "http://127.0.0.1:4443", "postgres://postgres@/postgres?host=%2Ftmp%2Fx y",
		"it's", "", "a'b'c", `back\slash`} {
		q := shellQuote(s)
		if got := shellWords(t, "export X="+q); len(got) != 2 || got[1] != "X="+s {
			t.Errorf("shellQuote(%q) = %s, reads back as %q", s, q, got)
		}
	}
}

// With notifications through a Pub/Sub emulator, dev also prints where it
// is and the subscription, so `tracegw notify` can read it.
func TestDevExportsPubSub(t *testing.T) {
	t.Parallel()
	d := &devSystem{dbURL: "postgres://x@/y?host=%2Fd", gcsEndpoint: "http://127.0.0.1:4443", bucket: "traces",
		project: "proj", subscription: "sub", pubsub: &localPubSub{Addr: "127.0.0.1:8085"}}
	env := exportsOf(t, strings.Join(d.exports(), "\n"))
	for k, want := range map[string]string{
		"TRACEGW_DATABASE_URL": d.dbURL, "DATABASE_URL": d.dbURL, "TRACEGW_GCS_ENDPOINT": "http://127.0.0.1:4443",
		"STORAGE_EMULATOR_HOST": "127.0.0.1:4443", "TRACEGW_BUCKET": "traces",
		"PUBSUB_EMULATOR_HOST": "127.0.0.1:8085", "TRACEGW_PUBSUB_PROJECT": "proj", "TRACEGW_SUBSCRIPTION": "sub",
	} {
		if env[k] != want {
			t.Errorf("%s=%q, want %q", k, env[k], want)
		}
	}
}

// The banner's export lines point tracegw's operator commands at the
// running dev: pasted into another shell (here: set in the environment),
// migrate, reconcile, gc and status reach its PostgreSQL and its GCS
// emulator, through TRACEGW_GCS_ENDPOINT or STORAGE_EMULATOR_HOST alone.
func TestDevPrintsHowToReachItsParts(t *testing.T) {
	dt := startDevTest(t, testutil.PG(t))
	var b bytes.Buffer
	dt.d.printBanner(&b, dt.url)
	banner := b.String()
	env := exportsOf(t, banner)
	for _, k := range []string{"TRACEGW_DATABASE_URL", "DATABASE_URL", "TRACEGW_GCS_ENDPOINT", "STORAGE_EMULATOR_HOST", "TRACEGW_BUCKET"} {
		if env[k] == "" {
			t.Errorf("the banner exports no %s:\n%s", k, banner)
		}
	}
	if _, ok := env["PUBSUB_EMULATOR_HOST"]; ok || !strings.Contains(banner, "notifications pass in memory") {
		t.Errorf("dev without Pub/Sub should say notifications pass in memory, and export no PUBSUB_EMULATOR_HOST:\n%s", banner)
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	const canvas = "7d3f5a1c-0000-4000-8000-0000000000e1"
	dt.save(canvas, "1")

	code, out, errs := runCmd(t, "migrate")
	if code != 0 || !strings.Contains(out, "schema up to date") {
		t.Errorf("migrate: exit %d, %s%s", code, out, errs)
	}
	code, out, errs = runCmd(t, "reconcile", "--dry-run", "--canvas", canvas)
	if code != 0 || !strings.Contains(out, "listed 1 objects") || !strings.Contains(out, "compared 1 indexed traces") {
		t.Errorf("reconcile: exit %d, %s%s", code, out, errs)
	}
	code, out, errs = runCmd(t, "gc", "--once")
	if code != 0 || !strings.Contains(out, "gc: ") {
		t.Errorf("gc --once: exit %d, %s%s", code, out, errs)
	}
	_, out, errs = runCmd(t, "status", "--max-notify-lag", "30d")
	if !strings.Contains(out, "(the emulator's clock), bucket "+env["TRACEGW_BUCKET"]) || !strings.Contains(out, "retention 7d, keep 10") {
		t.Errorf("status: %s%s", out, errs)
	}
	// Google's client libraries find the emulator by STORAGE_EMULATOR_HOST
	// alone; so does tracegw without --gcs-endpoint.
	t.Setenv("TRACEGW_GCS_ENDPOINT", "")
	code, out, errs = runCmd(t, "reconcile", "--dry-run", "--canvas", canvas)
	if code != 0 || !strings.Contains(out, "listed 1 objects") {
		t.Errorf("reconcile through STORAGE_EMULATOR_HOST: exit %d, %s%s", code, out, errs)
	}
}

// recorder keeps every log record (of every level) for a test to count.
type recorder struct {
	mu   *sync.Mutex
	recs *[]slog.Record
}

func newRecorder() recorder { return recorder{mu: &sync.Mutex{}, recs: &[]slog.Record{}} }

func (r recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	*r.recs = append(*r.recs, rec.Clone())
	return nil
}
func (r recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r recorder) WithGroup(string) slog.Handler      { return r }

// records returns the records with message msg, and their attributes.
func (r recorder) records(msg string) []map[string]slog.Value {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]slog.Value
	for _, rec := range *r.recs {
		if rec.Message != msg {
			continue
		}
		attrs := map[string]slog.Value{"level": slog.StringValue(rec.Level.String())}
		rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value; return true })
		out = append(out, attrs)
	}
	return out
}

// An advance of 8 days runs 192 GC passes on the emulator's clock: the ones
// that did nothing log at debug level, and the advance logs one summary,
// which (like the JSON answer) explains why notificationsConsumed differs
// from deleted when it does.
func TestDevAdvanceLogsOneSummary(t *testing.T) {
	rec := newRecorder()
	dt := startDevTestLog(t, testutil.PG(t), slog.New(rec))
	const canvas = "7d3f5a1c-0000-4000-8000-0000000000e2"
	var last string
	for range 12 {
		last = dt.save(canvas, "1")
	}
	// A replace overwrites the object: GCS publishes the deletion of the old
	// generation, a notification no lifecycle rule caused.
	if st, b := dt.do("PUT", "/v1/canvases/"+canvas+"/traces/"+last, `{"rootTLID":"1"}`); st != 200 {
		t.Fatalf("replace: %d %s", st, b)
	}
	before := len(rec.records("gc pass done"))
	st, body := dt.doHeader("POST", "/_emulator/clock/advance?by=8d", "", emulator.ControlHeader, "1")
	if st != 200 {
		t.Fatalf("advance: %d %s", st, body)
	}
	sum := dt.advanceSummaryOf(body)
	if sum.Deleted != 2 || sum.NotificationsConsumed != 3 {
		t.Errorf("advance %s: want 2 deleted (ranks 11 and 12), 3 notifications consumed (and the overwrite's)", body)
	}
	if !strings.Contains(sum.Note, "not only the 2 lifecycle deletions") || !strings.Contains(sum.Note, "overwritten") {
		t.Errorf("advance %s: the note does not explain the difference", body)
	}

	passes := rec.records("gc pass done")[before:]
	info := 0
	for _, p := range passes {
		if p["level"].String() == "DEBUG" {
			if p["outcome"].String() != "ok" || p["renewed"].Int64() != 0 || p["gone"].Int64() != 0 || p["repaired"].Int64() != 0 {
				t.Errorf("a pass that did something logged at debug level: %v", p)
			}
			continue
		}
		info++
	}
	if len(passes) < 192 || info == 0 || info > 3 {
		t.Errorf("%d gc passes during the advance, %d of them above debug level; want at least 192, and only the few that renewed above debug", len(passes), info)
	}
	advanced := rec.records("clock advanced")
	if len(advanced) != 1 || advanced[0]["level"].String() != "INFO" || advanced[0]["note"].String() != sum.Note {
		t.Errorf("the advance logged %v, want one INFO summary with the note", advanced)
	}
	for _, r := range rec.records("lifecycle sweep done") {
		if r["level"].String() != "DEBUG" {
			t.Errorf("a lifecycle sweep logged at %s: the advance's summary counts it", r["level"])
		}
	}
}
