package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/ttl"
	"github.com/tracegw/tracegw/testutil"
)

// TestServeFollowsEmulatorClock: serve --run-gc against an emulator runs
// on the emulator's clock, not the local one: after the clock is advanced
// three days, a new trace's customTime is the emulator's time, and each
// advance of one --gc-interval is followed by a GC pass that starts at the
// new time (and not before it: no pass runs while the clock stands).
func TestServeFollowsEmulatorClock(t *testing.T) {
	t.Parallel()
	emu := testutil.Emulator(t)
	db := testutil.PG(t)
	if _, err := ttl.SetupBucket(t.Context(), objstore.New(emu.Client, emu.Bucket), ttl.DefaultPolicy(), ttl.BucketOptions{}, false); err != nil {
		t.Fatal(err)
	}
	idx, err := index.Open(t.Context(), db, index.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer idx.Close()
	lastPass := func() index.PassRecord {
		last, found, _, _, err := idx.PassHistory(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if !found {
			return index.PassRecord{}
		}
		return last
	}
	passes := func() int {
		n := 0
		if err := idxCount(t, db, `SELECT count(*) FROM gc_passes`, &n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	advance := func(d time.Duration) time.Time {
		t.Helper()
		s, err := emu.E.Advance(t.Context(), d)
		if err != nil {
			t.Fatal(err)
		}
		return s.Now
	}
	at := advance(3 * 24 * time.Hour)

	ctx, sigterm := context.WithCancel(t.Context())
	defer sigterm()
	exit := make(chan int, 1)
	var logs syncWriter
	go func() {
		exit <- run(ctx, []string{"serve", "--insecure-no-auth", "--listen", "127.0.0.1:0", "--database-url", db,
			"--gcs-endpoint", emu.URL, "--bucket", emu.Bucket, "--run-gc", "--shutdown-timeout", "5s"}, io.Discard, &logs)
	}()
	addr := regexp.MustCompile(`"msg":"serving","addr":"([^"]+)"`)
	testutil.WaitFor(t, 30*time.Second, "serve to log its address", func() bool { return addr.MatchString(logs.String()) })
	if !strings.Contains(logs.String(), "on the emulator's clock") {
		t.Errorf("serve did not say it runs on the emulator's clock:\n%s", logs.String())
	}

	canvas := "7d3f5a1c-0000-4000-8000-0000000000ee"
	resp, err := http.Post("http://"+addr.FindStringSubmatch(logs.String())[1]+"/v1/canvases/"+canvas+"/traces",
		"application/json", strings.NewReader(`{"rootTLID":"1"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := regexp.MustCompile(`"traceID":"([^"]+)"`).FindStringSubmatch(string(body))
	if id == nil {
		t.Fatalf("save: %d %s", resp.StatusCode, body)
	}
	cv, _ := traces.ParseCanvasID(canvas)
	tid, _ := traces.ParseTraceID(id[1])
	attrs, err := emu.Client.Bucket(emu.Bucket).Object(traces.TraceKey(cv, tid)).Attrs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if ct := attrs.CustomTime; ct.Before(at.Add(-time.Second)) || ct.After(emu.E.Now()) {
		t.Errorf("customTime %s, want the emulator's time (%s..%s), three days after the local clock", ct, at, emu.E.Now())
	}

	// The first pass ran at start; each advance of one interval brings one
	// more, at the new time.
	testutil.WaitFor(t, 30*time.Second, "a first GC pass", func() bool { return !lastPass().StartedAt.IsZero() })
	for range 3 {
		n := passes()
		at := advance(time.Hour)
		testutil.WaitFor(t, 30*time.Second, "a GC pass at the advanced time", func() bool { return !lastPass().StartedAt.Before(at.Truncate(time.Second)) })
		if got := passes(); got != n+1 {
			t.Errorf("passes after advancing one interval: %d, want %d", got, n+1)
		}
		if p := lastPass(); p.Outcome != index.PassOK {
			t.Errorf("pass at %s: %s %s", p.StartedAt, p.Outcome, p.Error)
		}
	}
	sigterm()
	if code := <-exit; code != 0 {
		t.Errorf("serve exited %d; logs:\n%s", code, logs.String())
	}
}

// idxCount runs a one-value query on the database at url into dst.
func idxCount(t *testing.T, url, q string, dst any) error {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(t.Context(), q).Scan(dst)
}
