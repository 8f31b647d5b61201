package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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
	testutil.WaitFor(t, 30*time.Second, func() bool { return nAcked.Load() >= 100 })
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
