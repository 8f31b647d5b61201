package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/testutil"
)

// testStack builds the serve stack against a test database and emulator.
func testStack(t *testing.T, edit func(c *Config)) *stack {
	t.Helper()
	emu := testutil.Emulator(t)
	c := defaults()
	c.DatabaseURL, c.GCSEndpoint, c.Bucket = testutil.PG(t), emu.URL, emu.Bucket
	if edit != nil {
		edit(&c)
	}
	st, err := newStack(t.Context(), c, slog.New(slog.DiscardHandler), time.Now, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	b, _ := io.ReadAll(rec.Body)
	return rec.Code, string(b)
}

func TestMetricsAndPprofPlacement(t *testing.T) {
	t.Parallel()
	// No admin listener: /metrics on the API, pprof nowhere.
	st := testStack(t, nil)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("POST", "/v1/canvases/7d3f5a1c-0000-4000-8000-0000000000cc/traces", strings.NewReader(`{"rootTLID":"1"}`))
	req.Header.Set("Content-Type", "application/json")
	st.api.Handler().ServeHTTP(rec, req)
	if rec.Code != 201 {
		t.Fatalf("save: %d %s", rec.Code, rec.Body)
	}
	code, body := get(t, st.api.Handler(), "/metrics")
	for _, want := range []string{`tracegw_gcs_calls_total{kind="create",outcome="ok"} 1`, "go_goroutines", "process_cpu_seconds_total"} {
		if code != 200 || !strings.Contains(body, want) {
			t.Errorf("API /metrics without --admin-listen: %d, lacks %s", code, want)
		}
	}
	if code, _ := get(t, st.api.Handler(), "/debug/pprof/"); code == 200 {
		t.Error("pprof is served on the API listener")
	}

	// Admin listener: /metrics only there; pprof only there and only with --pprof.
	st = testStack(t, func(c *Config) { c.AdminListen = "127.0.0.1:0" })
	if code, _ := get(t, st.api.Handler(), "/metrics"); code != 404 {
		t.Errorf("API /metrics with --admin-listen: %d, want 404", code)
	}
	if code, body := get(t, st.adminHandler(false), "/metrics"); code != 200 || !strings.Contains(body, "tracegw_http_requests_total") {
		t.Errorf("admin /metrics: %d", code)
	}
	if code, _ := get(t, st.adminHandler(false), "/debug/pprof/"); code != 404 {
		t.Errorf("admin pprof without --pprof: %d, want 404", code)
	}
	if code, _ := get(t, st.adminHandler(true), "/debug/pprof/"); code != 200 {
		t.Errorf("admin pprof with --pprof: %d, want 200", code)
	}
}

func TestReadyzSubscriptionHook(t *testing.T) {
	t.Parallel()
	st := testStack(t, nil)
	if code, body := get(t, st.api.Handler(), "/readyz"); code != 200 {
		t.Fatalf("readyz: %d %s", code, body)
	}
	st.subscriptionReady = func(ctx context.Context) error { return errors.New("subscription tracegw-notify: not found") }
	code, body := get(t, st.api.Handler(), "/readyz")
	if code != 503 || !strings.Contains(body, "subscription") || strings.Contains(body, "tracegw-notify") {
		t.Errorf("readyz with a failing subscription: %d %s, want 503 naming the part, not the error", code, body)
	}
}
