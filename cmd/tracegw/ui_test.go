package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/tracegw/tracegw/testutil"
)

// chromiumPath is where Debian's chromium package installs the browser.
const chromiumPath = "/usr/bin/chromium"

// newBrowser starts headless Chromium (a fresh profile, no network beyond
// loopback) and returns a tab's context. When the test fails, a screenshot
// of the tab is written to a temporary directory of its own, which stays
// after the test, and its path logged.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("the trace browser's test needs Chromium at %s: apt-get update && apt-get install -y chromium (%v)", chromiumPath, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1400, 1000),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// Registered after the context's cleanup, so it runs first, while the
	// tab is still there.
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		sctx, scancel := context.WithTimeout(ctx, 10*time.Second)
		defer scancel()
		png, err := chromedp.Run(sctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Logf("screenshot: %v", err)
			return
		}
		// Not t.TempDir: that is removed when the test ends, and the
		// screenshot is for after.
		dir, err := os.MkdirTemp("", "tracegw-"+t.Name()+"-*")
		if err != nil {
			t.Logf("screenshot: %v", err)
			return
		}
		path := filepath.Join(dir, "ui-failure.png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Logf("screenshot: %v", err)
			return
		}
		t.Logf("screenshot of the page at the failure: %s", path)
	})
	if err := chromedp.Do(ctx); err != nil { // start the browser
		t.Fatalf("start Chromium: %v", err)
	}
	return ctx
}

// shownTraces is the JavaScript that lists the trace IDs the page shows
// (each once), with whether it shows them held.
const shownTraces = `[...new Map([...document.querySelectorAll('#toplevels [data-trace-id]')]
  .map(e => [e.dataset.traceId, e.dataset.held === 'true'])).entries()].map(([id, held]) => id + (held ? ':held' : '')).sort()`

// waitShown waits, up to a deadline, until the page shows exactly want
// (ids, with ":held" for a held one); the page reads the API itself after
// each action.
func waitShown(t *testing.T, ctx context.Context, what string, want []string) {
	t.Helper()
	slices.Sort(want)
	expr := fmt.Sprintf(`(%s).join(',') === %q`, shownTraces, strings.Join(want, ","))
	tctx, cancel := context.WithTimeout(ctx, 45*time.Second)
	defer cancel()
	_, err := chromedp.Run(tctx, chromedp.Poll[chromedp.Void](expr,
		chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(40*time.Second)))
	if err == nil {
		return
	}
	got, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](shownTraces))
	status, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#status")))
	t.Fatalf("%s: the page shows %v, want %v (status line %q): %v", what, got, want, status, err)
}

// TestTraceBrowser loads /ui/ of a dev stack in headless Chromium: traces
// saved through the API appear on their toplevel's timeline, one is held
// through the page (reason and end), the clock is advanced 8 days with the
// page's button, and the others vanish while the held one stays.
func TestTraceBrowser(t *testing.T) {
	dt := startDevTest(t, testutil.PG(t))
	ctx := newBrowser(t)
	const canvas = "7d3f5a1c-0000-4000-8000-0000000001b1"
	var ids []string
	for range 4 {
		ids = append(ids, dt.save(canvas, "1234"))
	}
	// The toplevel was deleted: its latest traces are no longer kept for
	// it, so only retention (and holds) keep them.
	if st, b := dt.do("DELETE", "/v1/canvases/"+canvas+"/toplevels/1234", ""); st != 204 {
		t.Fatalf("forget toplevel: %d %s", st, b)
	}

	run := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		tctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(tctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	run("open the page",
		chromedp.Navigate(dt.url+"/ui/"),
		chromedp.WaitVisible(chromedp.CSS(`body[data-ready="true"]`)),
		chromedp.WaitVisible(chromedp.CSS("#clock")),
		chromedp.SendKeys(chromedp.CSS("#canvas-input"), canvas),
		chromedp.Click(chromedp.CSS("#open-btn")),
	)
	waitShown(t, ctx, "after opening the canvas", slices.Clone(ids))
	run("the canvas list names the canvas", chromedp.WaitVisible(chromedp.CSS(`#canvases [data-canvas="`+canvas+`"]`)))

	held := ids[1]
	run("hold a trace",
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`#toplevels [data-trace-id="%s"]`, held))),
		chromedp.WaitVisible(chromedp.CSS("#hold-btn")),
		chromedp.SendKeys(chromedp.CSS("#hold-reason"), "the bug of the week"),
		chromedp.SendKeys(chromedp.CSS("#hold-until"), "30d"),
		chromedp.Click(chromedp.CSS("#hold-btn")),
		chromedp.WaitVisible(chromedp.CSS("#release-btn")),
	)
	want := []string{held + ":held"}
	for _, id := range ids {
		if id != held {
			want = append(want, id)
		}
	}
	waitShown(t, ctx, "after holding one", want)
	detail, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#detail")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(detail, "the bug of the week") || !strings.Contains(detail, "held") {
		t.Errorf("the trace's detail does not show its hold: %q", detail)
	}

	run("advance the clock 8 days",
		chromedp.Click(chromedp.CSS("#advance-8d")),
		chromedp.WaitVisible(chromedp.CSS(`#advance-result`)),
	)
	waitShown(t, ctx, "8 days later", []string{held + ":held"})
	result, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("#advance-result")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(result, "deleted 3") {
		t.Errorf("advance result %q, want the 3 unheld traces deleted", result)
	}
}
