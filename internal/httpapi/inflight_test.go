package httpapi_test

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
	"github.com/tracegw/tracegw/testutil"
)

// budgetGateway is the API with a small in-flight body budget and a short
// wait, over a real index and bucket.
func budgetGateway(t testing.TB, maxBody, budget int64, wait time.Duration) (url string, reg *prometheus.Registry) {
	t.Helper()
	db, err := index.Open(t.Context(), testutil.PG(t), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	emu := testutil.Emulator(t)
	svc := tracestore.New(objstore.New(emu.Client, emu.Bucket), db, tracestore.Options{})
	reg = prometheus.NewRegistry()
	api := httpapi.New(httpapi.Options{Service: svc, Limits: traces.Limits{MaxBody: maxBody},
		MaxInflightBytes: budget, InflightWait: wait, Registerer: reg,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))})
	hs := httptest.NewServer(api.Handler())
	t.Cleanup(hs.Close)
	return hs.URL, reg
}

// gauge reads one metric without labels from reg (0 when absent).
func gauge(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	return 0
}

// slowSave is a save whose headers and first bytes are sent; finish sends
// the rest and returns the response.
type slowSave struct {
	conn net.Conn
	rest []byte
}

func startSlowSave(t *testing.T, url string, body []byte) *slowSave {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fmt.Fprintf(conn, "POST /v1/canvases/%s/traces HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", canvas, len(body))
	if _, err := conn.Write(body[:100]); err != nil {
		t.Fatal(err)
	}
	return &slowSave{conn: conn, rest: body[100:]}
}

func (s *slowSave) finish(t *testing.T) int {
	t.Helper()
	if _, err := s.conn.Write(s.rest); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(s.conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestBodyBudget: two slow saves hold the whole in-flight budget; a third
// save, of known length or chunked, waits its moment and gets 503 with
// Retry-After, while reads go on; once the slow ones finish, the same save
// succeeds.
func TestBodyBudget(t *testing.T) {
	t.Parallel()
	body := traceBody(1, 256<<10)
	url, reg := budgetGateway(t, 256<<10, 2*int64(len(body)), 20*time.Millisecond)
	a, b := startSlowSave(t, url, body), startSlowSave(t, url, body)
	testutil.WaitFor(t, 10*time.Second, "both bodies counted in flight", func() bool {
		return gauge(t, reg, "tracegw_http_inflight_body_bytes") == float64(2*len(body))
	})

	small := []byte(`{"rootTLID":"2"}`)
	status, hdr, resp := call(t, "POST", tracesURL(&gateway{URL: url}, canvas), "application/json", small)
	if code, _ := errorOf(t, resp); status != http.StatusServiceUnavailable || code != "unavailable" || hdr.Get("Retry-After") == "" {
		t.Errorf("save past the budget: %d %s, Retry-After %q; want 503 unavailable with Retry-After", status, resp, hdr.Get("Retry-After"))
	}
	// A chunked body (no Content-Length) is refused the same way.
	pr, pw := io.Pipe()
	go func() { pw.Write(small); pw.Close() }()
	req, _ := http.NewRequestWithContext(t.Context(), "POST", url+"/v1/canvases/"+canvas+"/traces", pr)
	req.Header.Set("Content-Type", "application/json")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if r.StatusCode != http.StatusServiceUnavailable || r.Header.Get("Retry-After") == "" {
		t.Errorf("chunked save past the budget: %d, Retry-After %q; want 503 with Retry-After", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if status, _, b := call(t, "GET", url+"/v1/canvases/"+canvas+"/toplevels/1/traces", "", nil); status != http.StatusOK {
		t.Errorf("a read while the budget is full: %d %s", status, b)
	}
	if n := gauge(t, reg, "tracegw_http_body_budget_refused_total"); n != 2 {
		t.Errorf("refused counter %v, want 2", n)
	}

	if sa, sb := a.finish(t), b.finish(t); sa != http.StatusCreated || sb != http.StatusCreated {
		t.Fatalf("slow saves: %d and %d, want 201", sa, sb)
	}
	testutil.WaitFor(t, 10*time.Second, "no body bytes in flight", func() bool { return gauge(t, reg, "tracegw_http_inflight_body_bytes") == 0 })
	if status, _, b := call(t, "POST", tracesURL(&gateway{URL: url}, canvas), "application/json", small); status != http.StatusCreated {
		t.Errorf("save within the budget after the others finished: %d %s, want 201", status, b)
	}
}
