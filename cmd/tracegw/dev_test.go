package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/tracegw/tracegw/internal/traces"
)

// TestDevEndToEnd starts the dev wiring in process (private PostgreSQL in
// the data dir, emulator, in-process Pub/Sub, free ports), saves traces over
// HTTP, lists them, advances the emulator's clock 8 days and sees the traces
// that are not kept gone from both the bucket and the index.
func TestDevEndToEnd(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", "") // the in-process Pub/Sub
	dir := t.TempDir()
	// The private PostgreSQL runs as the OS user postgres, which must reach
	// the data dir: t.TempDir's directories are private to us.
	for _, p := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c, err := Load("dev", []string{"--data-dir", dir, "--listen", "127.0.0.1:0"}, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	d, err := startDev(ctx, c, log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.serve(ctx, ln, c) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		d.Close()
	})
	url := "http://" + ln.Addr().String()
	const canvas = "7d3f5a1c-0000-4000-8000-0000000000aa"
	do := func(method, path, body string) (int, []byte) {
		t.Helper()
		req, _ := http.NewRequestWithContext(t.Context(), method, url+path, bytes.NewBufferString(body))
		req.Header.Set("Authorization", "Bearer "+d.token)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for i := range 15 {
		if st, b := do("POST", "/v1/canvases/"+canvas+"/traces", fmt.Sprintf(`{"rootTLID":"1","input":[["i",%d]]}`, i)); st != 201 {
			t.Fatalf("save %d: %d %s", i, st, b)
		}
	}
	for i := range 3 {
		if st, b := do("POST", "/v1/canvases/"+canvas+"/traces", fmt.Sprintf(`{"rootTLID":"2","input":[["i",%d]]}`, i)); st != 201 {
			t.Fatalf("save: %d %s", st, b)
		}
	}
	list := func(tlid string) []string {
		t.Helper()
		st, b := do("GET", "/v1/canvases/"+canvas+"/toplevels/"+tlid+"/traces?limit=100", "")
		if st != 200 {
			t.Fatalf("list: %d %s", st, b)
		}
		var r struct{ Traces []struct{ TraceID string } }
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatal(err)
		}
		ids := make([]string, len(r.Traces))
		for i, x := range r.Traces {
			ids[i] = x.TraceID
		}
		return ids
	}
	before := list("1")
	if len(before) != 15 || len(list("2")) != 3 {
		t.Fatalf("listed %d and %d traces, want 15 and 3", len(before), len(list("2")))
	}
	st, b := do("POST", "/_emulator/clock/advance?by=8d", "")
	if st != 200 {
		t.Fatalf("advance: %d %s", st, b)
	}
	var sum struct {
		Renewed, Deleted, NotificationsConsumed int
	}
	if err := json.Unmarshal(b, &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Deleted != 5 || sum.NotificationsConsumed != 5 || sum.Renewed != 13 {
		t.Errorf("advance summary %s: want 13 renewed, 5 deleted, 5 notifications consumed", b)
	}
	after := list("1")
	if len(after) != 10 || after[0] != before[0] || after[9] != before[9] {
		t.Errorf("after 8 days toplevel 1 lists %d traces, want its newest 10", len(after))
	}
	if n := len(list("2")); n != 3 {
		t.Errorf("toplevel 2 lists %d traces, want 3", n)
	}
	c2, _ := traces.ParseCanvasID(canvas)
	objects := 0
	for _, err := range d.st.gcs.Objects(t.Context(), traces.CanvasPrefix(c2)) {
		if err != nil {
			t.Fatal(err)
		}
		objects++
	}
	if objects != 13 {
		t.Errorf("bucket holds %d objects of the canvas, want 13", objects)
	}
	for _, id := range before[10:] {
		if st, _ := do("GET", "/v1/canvases/"+canvas+"/traces/"+id, ""); st != 404 {
			t.Errorf("expired trace %s: status %d, want 404", id, st)
		}
	}
}
