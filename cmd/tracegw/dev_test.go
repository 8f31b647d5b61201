package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// TestDevEndToEnd starts the dev wiring in process (private PostgreSQL in
// the data dir, emulator, in-process Pub/Sub, free ports), saves traces over
// HTTP, lists them, advances the emulator's clock 8 days and sees the traces
// that are not kept gone from both the bucket and the index.
// devTest is the dev wiring running in process on free ports.
type devTest struct {
	t   testing.TB
	d   *devSystem
	url string
	dir string // --data-dir
}

// startDevTest starts dev in a fresh data dir; databaseURL "" means the
// private PostgreSQL dev starts itself in that dir.
func startDevTest(t testing.TB, databaseURL string) *devTest {
	return startDevTestLog(t, databaseURL, slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})))
}

// startDevTestLog is startDevTest with dev's logger.
func startDevTestLog(t testing.TB, databaseURL string, log *slog.Logger) *devTest {
	t.Setenv("PUBSUB_EMULATOR_HOST", "") // the in-process Pub/Sub
	// The emulator's objects on tmpfs (it syncs every write), in a
	// directory of our own.
	dir := filepath.Join(testutil.FastTempDir(t), "dev")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The private PostgreSQL runs as the OS user postgres, which must reach
	// the data dir: temporary directories are private to us. Only ours are
	// opened up, never the shared roots above them.
	for p := dir; p != "/dev/shm" && p != os.TempDir() && p != "/" && p != "."; p = filepath.Dir(p) {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	env := func(k string) string {
		if k == "DATABASE_URL" {
			return databaseURL
		}
		return ""
	}
	c, err := Load("dev", []string{"--data-dir", dir, "--listen", "127.0.0.1:0"}, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	d, err := startDev(ctx, c, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		cancel()
		d.Close()
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
	return &devTest{t: t, d: d, url: "http://" + ln.Addr().String(), dir: dir}
}

// do sends a request as dev's admin (JSON body if any).
func (dt *devTest) do(method, path, body string) (int, []byte) {
	dt.t.Helper()
	return dt.doAs(dt.d.token, method, path, body)
}

// doHeader sends a request as dev's admin with extra header pairs.
func (dt *devTest) doHeader(method, path, body string, hdr ...string) (int, []byte) {
	dt.t.Helper()
	return dt.doAs(dt.d.token, method, path, body, hdr...)
}

// doAs sends a request with bearer token tok (JSON body if any) and extra
// header pairs.
func (dt *devTest) doAs(tok, method, path, body string, hdr ...string) (int, []byte) {
	t := dt.t
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), method, dt.url+path, bytes.NewBufferString(body))
	req.Header.Set("Authorization", "Bearer "+tok)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
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

// save stores a trace of root touching tlids and returns its ID.
func (dt *devTest) save(canvas, root string, tlids ...string) string {
	dt.t.Helper()
	tl := ""
	for i, x := range tlids {
		if i > 0 {
			tl += ","
		}
		tl += `"` + x + `"`
	}
	st, b := dt.do("POST", "/v1/canvases/"+canvas+"/traces", `{"rootTLID":"`+root+`","tlids":[`+tl+`]}`)
	if st != 201 {
		dt.t.Fatalf("save: %d %s", st, b)
	}
	var r struct{ TraceID string }
	if err := json.Unmarshal(b, &r); err != nil {
		dt.t.Fatal(err)
	}
	return r.TraceID
}

// list returns the trace IDs a toplevel lists, newest first.
func (dt *devTest) list(canvas, tlid string) []string {
	t := dt.t
	t.Helper()
	st, b := dt.do("GET", "/v1/canvases/"+canvas+"/toplevels/"+tlid+"/traces?limit=100", "")
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

// advance moves the emulator's clock through the API and returns the summary.
func (dt *devTest) advance(by string) advanceSummary {
	dt.t.Helper()
	st, b := dt.doHeader("POST", "/_emulator/clock/advance?by="+by, "", emulator.ControlHeader, "1")
	if st != 200 {
		dt.t.Fatalf("advance: %d %s", st, b)
	}
	var sum advanceSummary
	if err := json.Unmarshal(b, &sum); err != nil {
		dt.t.Fatal(err)
	}
	return sum
}

type advanceSummary struct {
	Renewed, Deleted, NotificationsConsumed int
	Note                                    string
}

// advanceSummaryOf decodes an advance's answer.
func (dt *devTest) advanceSummaryOf(body []byte) advanceSummary {
	dt.t.Helper()
	var sum advanceSummary
	if err := json.Unmarshal(body, &sum); err != nil {
		dt.t.Fatal(err)
	}
	return sum
}

// objects lists the canvas's object names in the bucket.
func (dt *devTest) objects(canvas string) map[string]bool {
	dt.t.Helper()
	c, err := traces.ParseCanvasID(canvas)
	if err != nil {
		dt.t.Fatal(err)
	}
	out := map[string]bool{}
	for info, err := range dt.d.st.gcs.Objects(dt.t.Context(), traces.CanvasPrefix(c)) {
		if err != nil {
			dt.t.Fatal(err)
		}
		out[info.Key] = true
	}
	return out
}

// TestDevEndToEnd starts the dev wiring in process (private PostgreSQL in
// the data dir, emulator, in-process Pub/Sub, free ports), saves traces over
// HTTP, lists them, advances the emulator's clock 8 days and sees the traces
// that are not kept gone from both the bucket and the index.
func TestDevEndToEnd(t *testing.T) {
	dt := startDevTest(t, "")
	const canvas = "7d3f5a1c-0000-4000-8000-0000000000aa"
	for range 15 {
		dt.save(canvas, "1")
	}
	for range 3 {
		dt.save(canvas, "2")
	}
	list := func(tlid string) []string { return dt.list(canvas, tlid) }
	do := dt.do
	before := list("1")
	if len(before) != 15 || len(list("2")) != 3 {
		t.Fatalf("listed %d and %d traces, want 15 and 3", len(before), len(list("2")))
	}
	if sum := dt.advance("8d"); sum.Deleted != 5 || sum.NotificationsConsumed != 5 || sum.Renewed != 13 {
		t.Errorf("advance summary %+v: want 13 renewed, 5 deleted, 5 notifications consumed", sum)
	}
	after := list("1")
	if len(after) != 10 || after[0] != before[0] || after[9] != before[9] {
		t.Errorf("after 8 days toplevel 1 lists %d traces, want its newest 10", len(after))
	}
	if n := len(list("2")); n != 3 {
		t.Errorf("toplevel 2 lists %d traces, want 3", n)
	}
	if n := len(dt.objects(canvas)); n != 13 {
		t.Errorf("bucket holds %d objects of the canvas, want 13", n)
	}
	for _, id := range before[10:] {
		if st, _ := do("GET", "/v1/canvases/"+canvas+"/traces/"+id, ""); st != 404 {
			t.Errorf("expired trace %s: status %d, want 404", id, st)
		}
	}
}

// TestDevTokens checks that dev prints an admin JWT and that `tracegw token`
// with dev's key file mints tokens the running dev accepts, scope included.
func TestDevTokens(t *testing.T) {
	dt := startDevTest(t, testutil.PG(t))
	const canvas = "7d3f5a1c-0000-4000-8000-0000000000ab"
	keyFile := filepath.Join(dt.dir, "signing.key")
	key, err := httpapi.LoadKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := httpapi.VerifyToken(key, dt.d.token, time.Now()); err != nil || c.Role != httpapi.RoleAdmin || c.Canvas != nil {
		t.Errorf("dev's token: claims %+v, err %v; want an unscoped admin JWT", c, err)
	}
	dt.save(canvas, "1")
	mint := func(args ...string) string {
		t.Helper()
		var out bytes.Buffer
		if err := runToken(t.Context(), append([]string{"--signing-key-file", keyFile}, args...), &out, io.Discard); err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(out.String())
	}
	list := "/v1/canvases/" + canvas + "/toplevels/1/traces"
	for _, tc := range []struct {
		name string
		tok  string
		want int
	}{
		{"editor of the canvas", mint("--role", "editor", "--canvas", canvas), 200},
		{"editor of another canvas", mint("--role", "editor", "--canvas", "7d3f5a1c-0000-4000-8000-0000000000ac"), 403},
		{"executor", mint("--role", "executor"), 403},
	} {
		if st, b := dt.doAs(tc.tok, "GET", list, ""); st != tc.want {
			t.Errorf("%s: %d %s, want %d", tc.name, st, b, tc.want)
		}
	}
}

// TestDevEmulatorRoutesGuarded: on dev's one listener, a cross-site
// "simple" POST or a rebound Host cannot move the clock; the request the
// banner prints can.
func TestDevEmulatorRoutesGuarded(t *testing.T) {
	dt := startDevTest(t, testutil.PG(t))
	const advance = "/_emulator/clock/advance?by=300d"
	before := dt.d.emu.Now()
	simple, _ := http.NewRequestWithContext(t.Context(), "POST", dt.url+advance, strings.NewReader("x=1"))
	simple.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rebound, _ := http.NewRequestWithContext(t.Context(), "POST", dt.url+advance, nil)
	rebound.Host = "evil.example"
	rebound.Header.Set(emulator.ControlHeader, "1")
	for name, req := range map[string]*http.Request{"simple POST": simple, "rebound Host": rebound} {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden || !bytes.Contains(b, []byte(`"code":"permission_denied"`)) {
			t.Errorf("%s: %d %s, want 403 permission_denied", name, resp.StatusCode, b)
		}
	}
	if d := dt.d.emu.Now().Sub(before); d > time.Hour {
		t.Fatalf("refused requests moved the clock by %s", d)
	}
	var banner bytes.Buffer
	dt.d.printBanner(&banner, dt.url)
	want := "curl -s -X POST -H '" + emulator.ControlHeader + ": 1' '" + dt.url + "/_emulator/clock/advance?by=8d'"
	if !strings.Contains(banner.String(), want) {
		t.Errorf("banner:\n%s\nwant the line %s", banner.String(), want)
	}
	if sum := dt.advance("8d"); sum.NotificationsConsumed != 0 || dt.d.emu.Now().Sub(before) < 8*24*time.Hour {
		t.Errorf("advance with the header: %+v", sum)
	}
}
