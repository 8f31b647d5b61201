package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// faultDoc is a save body with a caller-chosen traceID (so a client can
// retry it after a 503) and a marker to recognise it on read.
func faultDoc(id traces.TraceID, marker string) []byte {
	return []byte(fmt.Sprintf(`{"traceID":%q,"timestamp":%q,"rootTLID":"7","input":[["request",{"marker":%q}]]}`,
		id, id.Time().UTC().Format("2006-01-02T15:04:05.000Z"), marker))
}

// indexRows counts the index rows of a trace.
func indexRows(t *testing.T, dbURL string, id string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var n int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM traces WHERE trace_id = $1", id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// clearFaults removes every pending emulator fault.
func clearFaults(t *testing.T, emu *testutil.Emu) {
	t.Helper()
	status, _, b := call(t, "DELETE", emu.URL+"/_emulator/faults", "", nil, emulator.ControlHeader, "1")
	if status >= 300 {
		t.Fatalf("clear faults: %d %s", status, b)
	}
}

// readable fails unless the trace reads back with its marker.
func readable(t *testing.T, g *secureGateway, tok, canvas, id, marker string) {
	t.Helper()
	status, _, b := call(t, "GET", g.URL+"/v1/canvases/"+canvas+"/traces/"+id, "", nil, bearer(tok)...)
	if status != http.StatusOK || !bytes.Contains(b, []byte(marker)) {
		t.Errorf("acknowledged trace %s: read %d %.200s, want 200 with %s", id, status, b, marker)
	}
}

func TestFaultUploadFailsWritesNoRow(t *testing.T) {
	t.Parallel()
	dbURL := testutil.PG(t)
	g := newSecureGateway(t, dbURL, nil)
	tok := g.token(t, httpapi.RoleAdmin, "")
	id := traces.NewTraceID(time.Now())
	body := faultDoc(id, "upload-fault")
	// objstore tries an upload 4 times; fail every attempt.
	g.Emu.E.InjectFaults("upload", 4, http.StatusServiceUnavailable)
	status, _, b := call(t, "POST", g.URL+"/v1/canvases/"+canvasA+"/traces", "application/json", body, bearer(tok)...)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("save during upload faults: %d %s, want 503", status, b)
	}
	if code, _ := errorOf(t, b); code != "unavailable" {
		t.Errorf("code %q, want unavailable", code)
	}
	if n := indexRows(t, dbURL, id.String()); n != 0 {
		t.Errorf("%d index rows after a failed upload, want 0", n)
	}
	clearFaults(t, g.Emu)
	status, _, b = call(t, "POST", g.URL+"/v1/canvases/"+canvasA+"/traces", "application/json", body, bearer(tok)...)
	if status != http.StatusCreated {
		t.Fatalf("retry after the faults: %d %s, want 201", status, b)
	}
	readable(t, g, tok, canvasA, id.String(), "upload-fault")
}

func TestFaultIndexDownThenRetry(t *testing.T) {
	t.Parallel()
	pg := testutil.PGPrivate(t)
	g := newSecureGateway(t, pg.URL(), nil)
	tok := g.token(t, httpapi.RoleAdmin, "")
	id := traces.NewTraceID(time.Now())
	body := faultDoc(id, "index-fault")

	pg.Stop()
	status, _, b := call(t, "POST", g.URL+"/v1/canvases/"+canvasA+"/traces", "application/json", body, bearer(tok)...)
	if status != http.StatusServiceUnavailable {
		t.Fatalf("save with PostgreSQL stopped: %d %s, want 503", status, b)
	}
	if bytes.Contains(b, []byte("SQL")) || bytes.Contains(b, []byte("postgres")) || bytes.Contains(b, []byte("127.0.0.1")) {
		t.Errorf("503 leaks internals: %s", b)
	}
	status, _, b = call(t, "GET", g.URL+"/readyz", "", nil)
	if status != http.StatusServiceUnavailable || !bytes.Contains(b, []byte("database")) {
		t.Errorf("readyz with PostgreSQL stopped: %d %s, want 503 naming database", status, b)
	}

	pg.Start()
	waitReady(t, g)
	// The object of the first attempt is already there: the retry recognises
	// it as the same trace (200) and writes the index rows.
	status, _, b = call(t, "POST", g.URL+"/v1/canvases/"+canvasA+"/traces", "application/json", body, bearer(tok)...)
	if status != http.StatusOK && status != http.StatusCreated {
		t.Fatalf("retry after PostgreSQL returned: %d %s, want 200 or 201", status, b)
	}
	if status != http.StatusOK {
		t.Errorf("retry answered %d; the object of the failed attempt should make it 200", status)
	}
	readable(t, g, tok, canvasA, id.String(), "index-fault")
	if n := indexRows(t, pg.URL(), id.String()); n != 1 {
		t.Errorf("%d index rows after the retry, want 1", n)
	}
}

// waitReady waits until /readyz answers 200.
func waitReady(t *testing.T, g *secureGateway) {
	t.Helper()
	testutil.WaitFor(t, 30*time.Second, "/readyz to answer 200", func() bool {
		status, _, _ := call(t, "GET", g.URL+"/readyz", "", nil)
		return status == http.StatusOK
	})
}

// saveLoad is a stream of saves by several workers, each with a fresh
// traceID; it records what was acknowledged and how the rest failed.
type saveLoad struct {
	url, tok string
	acked    sync.Map // traceID -> marker
	nAcked   atomic.Int64
	statuses sync.Map // status or transport error -> *atomic.Int64
	nFailed  atomic.Int64
}

func (l *saveLoad) count(key string) {
	v, _ := l.statuses.LoadOrStore(key, new(atomic.Int64))
	v.(*atomic.Int64).Add(1)
}

// run saves until ctx ends. Transport errors count as failures (a stopped
// server refuses connections), never as acknowledgements.
func (l *saveLoad) run(ctx context.Context, worker int, client *http.Client) {
	for i := 0; ctx.Err() == nil; i++ {
		id := traces.NewTraceID(time.Now())
		marker := fmt.Sprintf("w%d-%d", worker, i)
		req, err := http.NewRequestWithContext(context.WithoutCancel(ctx), "POST", l.url, bytes.NewReader(faultDoc(id, marker)))
		if err != nil {
			panic(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+l.tok)
		resp, err := client.Do(req)
		if err != nil {
			l.count("transport error")
			l.nFailed.Add(1)
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		l.count(fmt.Sprint(resp.StatusCode))
		if resp.StatusCode/100 == 2 {
			var r struct{ TraceID string }
			if err := json.Unmarshal(b, &r); err != nil || r.TraceID != id.String() {
				l.count("2xx with a wrong body")
				continue
			}
			l.acked.Store(id.String(), marker)
			l.nAcked.Add(1)
		} else {
			l.nFailed.Add(1)
		}
	}
}

func (l *saveLoad) summary() string {
	var s string
	l.statuses.Range(func(k, v any) bool {
		s += fmt.Sprintf(" %s×%d", k, v.(*atomic.Int64).Load())
		return true
	})
	return s
}

func TestFaultRestartsCostErrorsNotData(t *testing.T) {
	t.Parallel()
	pg := testutil.PGPrivate(t)
	g := newSecureGateway(t, pg.URL(), nil)
	tok := g.token(t, httpapi.RoleAdmin, "")
	load := &saveLoad{url: g.URL + "/v1/canvases/" + canvasA + "/traces", tok: tok}
	ctx, stop := context.WithCancel(t.Context())
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 30 * time.Second}
	for w := range 8 {
		wg.Go(func() { load.run(ctx, w, client) })
	}

	testutil.WaitFor(t, 60*time.Second, "acks before the restart", func() bool { return load.nAcked.Load() >= 30 })
	pg.Stop()
	failed := load.nFailed.Load()
	testutil.WaitFor(t, 60*time.Second, "failures while PostgreSQL is down", func() bool { return load.nFailed.Load() >= failed+10 })
	pg.Start()
	acked := load.nAcked.Load()
	testutil.WaitFor(t, 60*time.Second, "acks after PostgreSQL returned", func() bool { return load.nAcked.Load() >= acked+30 })

	// GCS answers 503 for a while: uploads, then stats and reads too.
	failed = load.nFailed.Load()
	g.Emu.E.InjectFaults("upload", 60, http.StatusServiceUnavailable)
	g.Emu.E.InjectFaults("metadata", 10, http.StatusServiceUnavailable)
	testutil.WaitFor(t, 60*time.Second, "failures while GCS answers 503", func() bool { return load.nFailed.Load() >= failed+5 })
	clearFaults(t, g.Emu)
	acked = load.nAcked.Load()
	testutil.WaitFor(t, 60*time.Second, "acks after GCS recovered", func() bool { return load.nAcked.Load() >= acked+30 })
	stop()
	wg.Wait()

	t.Logf("saves:%s", load.summary())
	load.statuses.Range(func(k, _ any) bool {
		if s := k.(string); s != "200" && s != "201" && s != "503" {
			t.Errorf("a save answered %s; faults must cost 503s only", s)
		}
		return true
	})
	n := 0
	load.acked.Range(func(id, marker any) bool {
		readable(t, g, tok, canvasA, id.(string), marker.(string))
		n++
		return true
	})
	t.Logf("%d acknowledged traces, all readable", n)
}
