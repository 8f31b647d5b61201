package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// TestShutdownDuringSavesLosesNothing cancels serveHTTP's context (what
// SIGTERM does through signal.NotifyContext) while eight clients save as
// fast as they can, and checks that every acknowledged trace is readable.
func TestShutdownDuringSavesLosesNothing(t *testing.T) {
	t.Parallel()
	emu := testutil.Emulator(t)
	c := defaults()
	c.DatabaseURL, c.GCSEndpoint, c.Bucket = testutil.PG(t), emu.URL, emu.Bucket
	c.ShutdownTimeout = 20 * time.Second
	log := slog.New(slog.DiscardHandler)
	st, err := newStack(t.Context(), c, log, time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, sigterm := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- serveHTTP(ctx, ln, st.api.Handler(), c.ShutdownTimeout, log) }()

	canvas, err := traces.ParseCanvasID("7d3f5a1c-0000-4000-8000-0000000000cc")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String() + "/v1/canvases/" + canvas.String() + "/traces"
	var (
		acked       sync.Map // trace ID -> marker
		nAcked      atomic.Int64
		afterSignal atomic.Int64 // 2xx answers that arrived after the cancel
		signalled   atomic.Bool
		stopped     = make(chan struct{})
		wg          sync.WaitGroup
	)
	for w := range 8 {
		wg.Go(func() {
			client := &http.Client{Timeout: 30 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stopped:
					return
				default:
				}
				id := traces.NewTraceID(time.Now())
				marker := fmt.Sprintf("w%d-%d", w, i)
				body := fmt.Sprintf(`{"traceID":%q,"rootTLID":"9","input":[["request",{"marker":%q}]]}`, id, marker)
				resp, err := client.Post(url, "application/json", bytes.NewReader([]byte(body)))
				if err != nil {
					continue // refused after shutdown: an error, not an acknowledgement
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode/100 == 2 {
					acked.Store(id, marker)
					nAcked.Add(1)
					if signalled.Load() {
						afterSignal.Add(1)
					}
				}
			}
		})
	}
	testutil.WaitFor(t, 30*time.Second, "100 acknowledged saves", func() bool { return nAcked.Load() >= 100 })
	signalled.Store(true)
	start := time.Now()
	sigterm()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serveHTTP: %v", err)
		}
	case <-time.After(c.ShutdownTimeout + 5*time.Second):
		t.Fatal("serveHTTP did not return within --shutdown-timeout")
	}
	took := time.Since(start)
	close(stopped)
	wg.Wait()

	n := 0
	acked.Range(func(k, v any) bool {
		n++
		read, err := st.svc.Get(t.Context(), canvas, k.(traces.TraceID))
		if err != nil {
			t.Errorf("acknowledged trace %s: %v", k, err)
			return true
		}
		b, err := traces.AppendTraceJSON(nil, read.Trace)
		if err != nil || !bytes.Contains(b, []byte(v.(string))) {
			t.Errorf("acknowledged trace %s reads back as %s (%v), want marker %s", k, b, err, v)
		}
		return true
	})
	t.Logf("shutdown took %s; %d acknowledged traces (%d answered after the signal), all readable", took, n, afterSignal.Load())
}

// TestServeEndToEnd runs `tracegw serve` as main would (minus the signal):
// it refuses to start without a key, serves with one, answers 401 without a
// token, saves with one, and returns cleanly when its context is cancelled.
func TestServeEndToEnd(t *testing.T) {
	t.Parallel()
	emu := testutil.Emulator(t)
	db := testutil.PG(t)
	args := []string{"--listen", "127.0.0.1:0", "--database-url", db, "--gcs-endpoint", emu.URL, "--bucket", emu.Bucket,
		"--shutdown-timeout", "10s"}
	var stderr syncWriter
	if code := run(t.Context(), append([]string{"serve"}, args...), io.Discard, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "--signing-key-file") {
		t.Fatalf("serve without a key: exit %d, stderr %s", code, stderr.String())
	}

	keyFile := filepath.Join(t.TempDir(), "signing.key")
	key, err := httpapi.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, sigterm := context.WithCancel(t.Context())
	exit := make(chan int, 1)
	var logs syncWriter
	go func() {
		exit <- run(ctx, append([]string{"serve", "--signing-key-file", keyFile}, args...), io.Discard, &logs)
	}()
	addr := regexp.MustCompile(`"msg":"serving","addr":"([^"]+)"`)
	testutil.WaitFor(t, 30*time.Second, "the listening address in the logs", func() bool { return addr.MatchString(logs.String()) })
	url := "http://" + addr.FindStringSubmatch(logs.String())[1] + "/v1/canvases/7d3f5a1c-0000-4000-8000-0000000000cc/traces"

	resp, err := http.Post(url, "application/json", strings.NewReader(`{"rootTLID":"1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("save without a token: %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"rootTLID":"1","input":[["request",{"body":"do-not-log-me"}]]}`))
	req.Header.Set("Content-Type", "application/json")
	tok, err := httpapi.Sign(key, httpapi.Claims{Role: httpapi.RoleExecutor, Subject: "test", Expiry: time.Now().Add(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Errorf("save with a token: %d, want 201", resp.StatusCode)
	}

	sigterm()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("serve exited %d after the signal; logs:\n%s", code, logs.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not stop within --shutdown-timeout")
	}
	out := logs.String()
	if !strings.Contains(out, `"msg":"shutting down"`) {
		t.Errorf("no shutdown line in the logs:\n%s", out)
	}
	if strings.Contains(out, tok[strings.LastIndexByte(tok, '.')+1:]) || strings.Contains(out, "do-not-log-me") {
		t.Errorf("logs contain the token or the payload:\n%s", out)
	}
}

// syncWriter is a buffer safe for concurrent writes and reads.
type syncWriter struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
