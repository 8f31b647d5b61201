package httpapi_test

import (
	"bufio"
	"bytes"
	"cmp"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/vmihailenco/msgpack/v5"
	"golang.org/x/sys/unix"
	"google.golang.org/api/iterator"

	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// hostile is one request of the corpus, sent as raw bytes so that nothing
// (the client's URL cleaning, its Content-Length check) tidies it first.
type hostile struct {
	name   string
	method string
	path   string // sent verbatim on the request line
	ct     string
	body   []byte
	hdr    []string // extra header pairs
	// contentLength overrides the declared length (-1: len(body)); the
	// client then half-closes, so a short body ends in EOF.
	contentLength int64
	noAuth        bool
}

// threadCPU is the CPU time of the calling OS thread. CLOCK_THREAD_CPUTIME_ID
// is exact to the nanosecond, where getrusage(RUSAGE_THREAD) lags by up to a
// scheduler tick for the running thread.
func threadCPU(t testing.TB) time.Duration {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		t.Fatalf("clock_gettime: %v", err)
	}
	return time.Duration(ts.Nano())
}

// cpuMeter runs each request on a locked OS thread and records the
// handler's CPU time by response request id. Work done on that thread is
// the request's own; background GC workers are not counted.
type cpuMeter struct {
	mu  sync.Mutex
	cpu map[string]time.Duration
}

func (m *cpuMeter) wrap(t testing.TB, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		before := threadCPU(t)
		h.ServeHTTP(w, r)
		d := threadCPU(t) - before
		m.mu.Lock()
		m.cpu[w.Header().Get("X-Request-Id")] = d
		m.mu.Unlock()
	})
}

// rawDo sends h over a fresh connection and returns the response.
func rawDo(t testing.TB, addr, token string, i int, h hostile) (*http.Response, []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: gw\r\nConnection: close\r\nX-Request-Id: hostile-%d\r\n", h.method, h.path, i)
	if !h.noAuth {
		fmt.Fprintf(&b, "Authorization: Bearer %s\r\n", token)
	}
	if h.ct != "" {
		fmt.Fprintf(&b, "Content-Type: %s\r\n", h.ct)
	}
	cl := int64(len(h.body))
	if h.contentLength >= 0 {
		cl = h.contentLength
	}
	if h.body != nil || h.contentLength >= 0 {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", cl)
	}
	for j := 0; j+1 < len(h.hdr); j += 2 {
		fmt.Fprintf(&b, "%s: %s\r\n", h.hdr[j], h.hdr[j+1])
	}
	b.WriteString("\r\n")
	b.Write(h.body)
	// The server may answer (413, 431) and close before reading everything:
	// a write error then is expected; the response decides.
	_, _ = conn.Write(b.Bytes())
	if h.contentLength >= 0 {
		_ = conn.(*net.TCPConn).CloseWrite()
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, body
}

// Msgpack building blocks.
func mpStr(s string) []byte { return append([]byte{0xd9, byte(len(s))}, s...) }

func mpHuge(code byte) []byte { return []byte{code, 0xff, 0xff, 0xff, 0xff} } // declared length 2^32-1

func mpMap(n byte, kv ...[]byte) []byte { return append([]byte{0x80 | n}, bytes.Join(kv, nil)...) }

func mustMsgpack(t testing.TB, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hostileCorpus(t testing.TB, routes map[string]bool) []hostile {
	c := "/v1/canvases/" + canvasA
	save := c + "/traces"
	const ctM, ctJ = "application/msgpack", "application/json"
	var hs []hostile
	add := func(name, method, path, ct string, body []byte, hdr ...string) {
		hs = append(hs, hostile{name: name, method: method, path: path, ct: ct, body: body, hdr: hdr, contentLength: -1})
	}

	// A valid msgpack document, truncated at many offsets.
	valid := mustMsgpack(t, map[string]any{
		"rootTLID": uint64(1234), "tlids": []uint64{1234, 5678},
		"timestamp": time.Date(2026, 11, 22, 3, 48, 1, 123e6, time.UTC),
		"input":     []any{[]any{"request", map[string]any{"body": "hi", "n": []any{1, 2.5, nil, true}}}},
		"functionResults": []any{map[string]any{"tlid": uint64(5678), "exprID": uint64(42), "fnName": "HttpClient.get",
			"hashVersion": 0, "argHash": "a1b2", "value": map[string]any{"k": "v"}}},
	})
	for _, off := range []int{1, 2, 3, 5, 9, 14, 20, 31, 47, 64, 80, 100, 120, 140, len(valid) - 2, len(valid) - 1} {
		if off < len(valid) {
			add(fmt.Sprintf("truncated msgpack at %d/%d", off, len(valid)), "POST", save, ctM, valid[:off])
		}
	}

	// Declared lengths of 2^32-1 with no data behind them.
	for _, d := range []struct {
		name string
		code byte
	}{{"array32", 0xdd}, {"map32", 0xdf}, {"str32", 0xdb}, {"bin32", 0xc6}, {"ext32", 0xc9}} {
		add(d.name+" 2^32 at top level", "POST", save, ctM, mpHuge(d.code))
		add(d.name+" 2^32 as input", "POST", save, ctM, mpMap(2, mpStr("rootTLID"), []byte{0x01}, mpStr("input"), mpHuge(d.code)))
	}
	add("str32 2^32 as rootTLID", "POST", save, ctM, mpMap(1, mpStr("rootTLID"), mpHuge(0xdb)))
	add("array32 2^32 as functionResults", "POST", save, ctM, mpMap(2, mpStr("rootTLID"), []byte{0x01}, mpStr("functionResults"), mpHuge(0xdd)))
	add("array32 2^32 as tlids", "POST", save, ctM, mpMap(2, mpStr("rootTLID"), []byte{0x01}, mpStr("tlids"), mpHuge(0xdd)))
	add("map32 2^32 as an input value", "POST", save, ctM, mpMap(2, mpStr("rootTLID"), []byte{0x01}, mpStr("input"),
		[]byte{0x91, 0x92, 0xa1, 'x', 0xdf, 0xff, 0xff, 0xff, 0xff}))
	add("array32 2^32 of tlids in recent-traces", "POST", c+"/recent-traces", ctM, mpMap(1, mpStr("tlids"), mpHuge(0xdd)))

	// 10,000-deep nesting.
	deep := 10_000
	add("json 10000-deep arrays in input", "POST", save, ctJ,
		[]byte(`{"rootTLID":"1","input":[["x",`+strings.Repeat("[", deep)+strings.Repeat("]", deep)+`]]}`))
	add("json 10000-deep objects in a result value", "POST", save, ctJ,
		[]byte(`{"rootTLID":"1","functionResults":[{"tlid":"1","exprID":"1","fnName":"f","argHash":"a","value":`+
			strings.Repeat(`{"a":`, deep)+"1"+strings.Repeat("}", deep)+`}]}`))
	add("json 10000-deep at top level", "POST", save, ctJ, []byte(strings.Repeat("[", deep)+strings.Repeat("]", deep)))
	add("msgpack 10000-deep arrays in input", "POST", save, ctM, append(mpMap(2, mpStr("rootTLID"), []byte{0x01}, mpStr("input"),
		[]byte{0x91, 0x92, 0xa1, 'x'}), append(bytes.Repeat([]byte{0x91}, deep), 0xc0)...))
	add("msgpack 10000-deep maps at top level", "POST", save, ctM, append(bytes.Repeat([]byte{0x81, 0xa1, 'k'}, deep), 0xc0))

	// Wrong types for every field.
	for _, b := range []string{
		`{"traceID":5,"rootTLID":"1"}`,
		`{"rootTLID":[]}`,
		`{"rootTLID":"1","tlids":"1"}`,
		`{"rootTLID":"1","tlids":[true]}`,
		`{"rootTLID":"1","timestamp":5}`,
		`{"rootTLID":"1","timestamp":"yesterday"}`,
		`{"rootTLID":"1","input":{}}`,
		`{"rootTLID":"1","input":[[1,null]]}`,
		`{"rootTLID":"1","input":[["a"]]}`,
		`{"rootTLID":"1","functionResults":"x"}`,
		`{"rootTLID":"1","functionResults":[{"tlid":{},"exprID":"1","fnName":"f","argHash":"a","value":1}]}`,
		`{"rootTLID":"1","functionResults":[{"tlid":"1","exprID":true,"fnName":"f","argHash":"a","value":1}]}`,
		`{"rootTLID":"1","functionResults":[{"tlid":"1","exprID":"1","fnName":1,"argHash":"a","value":1}]}`,
		`{"rootTLID":"1","functionResults":[{"tlid":"1","exprID":"1","fnName":"f","hashVersion":"x","argHash":"a","value":1}]}`,
		`{"rootTLID":"1","functionResults":[{"tlid":"1","exprID":"1","fnName":"f","argHash":[],"value":1}]}`,
		`{"rootTLID":"-1"}`,
		`{"rootTLID":"18446744073709551616"}`,
		`{"rootTLID":1e999}`,
		`{"rootTLID":"1","input":[["x",NaN]]}`,
		`{"rootTLID":"1","rootTLID":"2"}`,
		`{"rootTLID":"1"} trailing`,
		`[]`, `null`, `"x"`, ``,
	} {
		add("json "+b, "POST", save, ctJ, []byte(b))
	}
	add("msgpack rootTLID as float", "POST", save, ctM, mustMsgpack(t, map[string]any{"rootTLID": 1.5}))
	add("msgpack tlids as map", "POST", save, ctM, mustMsgpack(t, map[string]any{"rootTLID": 1, "tlids": map[string]int{"a": 1}}))
	add("msgpack trailing bytes", "POST", save, ctM, append(append([]byte{}, valid...), 0xc0))
	add("msgpack int map key", "POST", save, ctM, []byte{0x81, 0x01, 0x01})
	add("recent-traces limit as string", "POST", c+"/recent-traces", ctJ, []byte(`{"tlids":["1"],"limit":"ten"}`))

	// Invalid UTF-8, in the document and deep inside values (value.go and
	// DecodeTrace say which strings are checked).
	add("json invalid utf-8 in an input value", "POST", save, ctJ, []byte("{\"rootTLID\":\"1\",\"input\":[[\"x\",{\"k\":\"\xff\"}]]}"))
	add("json lone surrogate in an input value", "POST", save, ctJ, []byte(`{"rootTLID":"1","input":[["x","\ud800"]]}`))
	add("msgpack invalid utf-8 in an input value", "POST", save, ctM, mpMap(2, mpStr("rootTLID"), []byte{0x01}, mpStr("input"),
		[]byte{0x91, 0x92, 0xa1, 'x', 0x81, 0xa1, 'k', 0xa2, 0xc3, 0x28}))
	add("json invalid utf-8 in traceID", "POST", save, ctJ, []byte("{\"traceID\":\"\xff\xfe\",\"rootTLID\":\"1\"}"))
	add("json invalid utf-8 outside strings", "POST", save, ctJ, []byte("{\"rootTLID\":\"1\",\xff}"))
	add("invalid utf-8 in the path", "GET", "/v1/canvases/\xff\xfe/traces", "", nil)
	add("json invalid utf-8 in a key", "POST", save, ctJ, []byte("{\"root\xffTLID\":\"1\"}"))
	add("msgpack invalid utf-8 key", "POST", save, ctM, mpMap(1, []byte{0xa8, 'r', 'o', 'o', 't', 0xff, 'L', 'D'}, []byte{0x01}))

	// Paths.
	v4 := "0e3f5a1c-1234-4abc-8def-0123456789ab"
	id := traces.NewTraceID(time.Now()).String()
	for _, p := range []string{
		c + "/traces/../traces",
		"/v1/canvases/../canvases/" + canvasA + "/traces/" + id,
		c + "/traces/%2e%2e",
		c + "/traces/" + id + "%2F..%2F" + id,
		c + "/traces/a%2Fb",
		c + "/traces/" + id + "%00",
		"/v1/canvases/" + canvasA + "%00/traces/" + id,
		c + "/traces/" + v4,
		c + "/traces/" + strings.ToUpper(id),
		c + "/traces/{" + id + "}",
		c + "/traces/" + id + id,
		c + "/traces/" + strings.Repeat("a", 8000),
		c + "//traces/" + id,
		"/v1/canvases/not-a-uuid/traces/" + id,
		c + "/toplevels/18446744073709551616/traces",
		c + "/toplevels/0x10/traces",
		c + "/toplevels/1/traces?limit=99999999999999999999",
		"/v1/traces/" + v4,
		"/v1/traces/%2F",
	} {
		add("GET "+p[:min(len(p), 80)], "GET", p, "", nil)
	}
	add("POST to a dot-dot canvas", "POST", "/v1/canvases/"+canvasA+"/../"+canvasB+"/traces", ctJ, []byte(`{"rootTLID":"1"}`))
	add("POST with %2F in the canvas", "POST", "/v1/canvases/"+canvasA+"%2F..%2F"+canvasB+"/traces", ctJ, []byte(`{"rootTLID":"1"}`))

	// Headers.
	add("overlong If-Match", "GET", c+"/traces/"+id, "", nil, "If-Match", strings.Repeat("9", 10_000))
	add("two Authorization headers", "GET", c+"/traces/"+id, "", nil, "Authorization", "Bearer x")
	add("overlong X-Request-Id with a bad body", "POST", save, ctJ, []byte(`{}`), "X-Request-Id", strings.Repeat("r", 10_000))
	add("2 MiB header", "GET", c+"/traces/"+id, "", nil, "X-Junk", strings.Repeat("j", 2<<20))
	add("bad content type", "POST", save, "application/x-evil", []byte(`{"rootTLID":"1"}`))
	add("content type with bad params", "POST", save, "application/json; =;;", []byte(`{"rootTLID":"1"}`))
	hs = append(hs,
		hostile{name: "overlong bearer token", method: "GET", path: c + "/traces/" + id, noAuth: true, contentLength: -1,
			hdr: []string{"Authorization", "Bearer tgw1." + strings.Repeat("A", 100_000)}},
		hostile{name: "no token", method: "POST", path: save, ct: ctJ, body: []byte(`{"rootTLID":"1"}`), noAuth: true, contentLength: -1},
		hostile{name: "huge Content-Length, small body", method: "POST", path: save, ct: ctJ, body: []byte(`{"rootTLID":"1"}`), contentLength: 1 << 40},
		hostile{name: "Content-Length 2^32, small body", method: "POST", path: save, ct: ctM, body: valid, contentLength: 1 << 32},
		hostile{name: "Content-Length longer than the body", method: "POST", path: save, ct: ctJ, body: []byte(`{"rootTLID":"1"}`), contentLength: 1000},
		hostile{name: "body over the limit", method: "POST", path: save, ct: ctJ, contentLength: -1,
			body: []byte(`{"rootTLID":"1","input":[["x","` + strings.Repeat("a", 2<<20) + `"]]}`)},
	)
	hs = append(hs, routeGroupCorpus(routes, valid)...)
	return hs
}

// routeGroupCorpus is the hostile input of the route groups beyond save,
// read and list; each part joins the corpus once its route is registered.
func routeGroupCorpus(routes map[string]bool, valid []byte) []hostile {
	c := "/v1/canvases/" + canvasA
	const ctM, ctJ = "application/msgpack", "application/json"
	id := traces.NewTraceID(time.Now()).String()
	v4 := "0e3f5a1c-1234-4abc-8def-0123456789ab"
	var hs []hostile
	add := func(route, name, method, path, ct string, body []byte, hdr ...string) {
		if routes[route] {
			hs = append(hs, hostile{name: name, method: method, path: path, ct: ct, body: body, hdr: hdr, contentLength: -1})
		}
	}
	replace := "PUT /v1/canvases/{canvasID}/traces/{traceID}"
	add(replace, "replace: truncated msgpack", "PUT", c+"/traces/"+id, ctM, valid[:len(valid)/2])
	add(replace, "replace: array32 2^32 input", "PUT", c+"/traces/"+id, ctM, mpMap(2, mpStr("rootTLID"), []byte{0x01}, mpStr("input"), mpHuge(0xdd)))
	add(replace, "replace: rootTLID object", "PUT", c+"/traces/"+id, ctJ, []byte(`{"rootTLID":{}}`))
	add(replace, "replace: If-Match not a generation", "PUT", c+"/traces/"+id, ctJ, []byte(`{"rootTLID":"1"}`), "If-Match", `"abc"`)
	add(replace, "replace: If-Match list", "PUT", c+"/traces/"+id, ctJ, []byte(`{"rootTLID":"1"}`), "If-Match", `"1", "2"`)
	add(replace, "replace: v4 trace ID", "PUT", c+"/traces/"+v4, ctJ, []byte(`{"rootTLID":"1"}`))
	layers := "POST /v1/canvases/{canvasID}/traces/{traceID}/function-results"
	add(layers, "layer: tlids a string", "POST", c+"/traces/"+id+"/function-results", ctJ, []byte(`{"tlids":"1"}`))
	add(layers, "layer: result tlid an object", "POST", c+"/traces/"+id+"/function-results", ctJ, []byte(`{"functionResults":[{"tlid":{},"exprID":"1","fnName":"f","argHash":"a","value":1}]}`))
	add(layers, "layer: array32 2^32 results", "POST", c+"/traces/"+id+"/function-results", ctM, mpMap(1, mpStr("functionResults"), mpHuge(0xdd)))
	add(layers, "layer: 10000-deep value", "POST", c+"/traces/"+id+"/function-results", ctJ,
		[]byte(`{"functionResults":[{"tlid":"1","exprID":"1","fnName":"f","argHash":"a","value":`+strings.Repeat("[", 10_000)+strings.Repeat("]", 10_000)+`}]}`))
	add(layers, "layer: %2F in the trace ID", "POST", c+"/traces/"+id+"%2F..%2Fx/function-results", ctJ, []byte(`{}`))
	unmatched := "POST /v1/canvases/{canvasID}/unmatched-requests"
	add(unmatched, "unmatched: module a number", "POST", c+"/unmatched-requests", ctJ, []byte(`{"module":1,"path":"/","modifier":"GET"}`))
	add(unmatched, "unmatched: no path", "POST", c+"/unmatched-requests", ctJ, []byte(`{"module":"HTTP","modifier":"GET"}`))
	add(unmatched, "unmatched: str32 2^32 path", "POST", c+"/unmatched-requests", ctM, mpMap(2, mpStr("module"), mpStr("HTTP"), mpStr("path"), mpHuge(0xdb)))
	add(unmatched, "unmatched: invalid utf-8 module", "POST", c+"/unmatched-requests", ctM,
		mpMap(3, mpStr("module"), []byte{0xa2, 0xff, 0xfe}, mpStr("path"), mpStr("/"), mpStr("modifier"), mpStr("GET")))
	add(unmatched, "unmatched: NUL in path", "POST", c+"/unmatched-requests", ctJ, []byte(`{"module":"HTTP","path":"/a\u0000b","modifier":"GET"}`))
	add(unmatched, "unmatched: 10000-deep input", "POST", c+"/unmatched-requests", ctM,
		append(mpMap(4, mpStr("module"), mpStr("HTTP"), mpStr("path"), mpStr("/"), mpStr("modifier"), mpStr("GET"), mpStr("input"),
			[]byte{0x91, 0x92, 0xa1, 'x'}), append(bytes.Repeat([]byte{0x91}, 10_000), 0xc0)...))
	dismiss := "DELETE /v1/canvases/{canvasID}/unmatched-requests"
	add(dismiss, "dismiss: no module", "DELETE", c+"/unmatched-requests?path=/&modifier=GET", "", nil)
	add(dismiss, "dismiss: invalid utf-8 module", "DELETE", c+"/unmatched-requests?module=%FF%FE&path=/&modifier=GET", "", nil)
	add(dismiss, "dismiss: NUL in path", "DELETE", c+"/unmatched-requests?module=HTTP&path=/a%00b&modifier=GET", "", nil)
	add(dismiss, "dismiss: 40 KiB path", "DELETE", c+"/unmatched-requests?module=HTTP&modifier=GET&path="+strings.Repeat("p", 40<<10), "", nil)
	promote := "POST /v1/canvases/{canvasID}/unmatched-requests/{traceID}/promote"
	add(promote, "promote: rootTLID an array", "POST", c+"/unmatched-requests/"+id+"/promote", ctJ, []byte(`{"rootTLID":[]}`))
	add(promote, "promote: no rootTLID", "POST", c+"/unmatched-requests/"+id+"/promote", ctJ, []byte(`{}`))
	add(promote, "promote: v4 trace ID", "POST", c+"/unmatched-requests/"+v4+"/promote", ctJ, []byte(`{"rootTLID":"1"}`))
	hold := "PUT /v1/canvases/{canvasID}/traces/{traceID}/hold"
	add(hold, "hold: v4 trace ID", "PUT", c+"/traces/"+v4+"/hold", ctJ, []byte(`{}`))
	add(hold, "hold: dot-dot trace ID", "PUT", c+"/traces/%2e%2e/hold", ctJ, []byte(`{}`))
	add("DELETE /v1/canvases/{canvasID}/traces/{traceID}/hold", "release: uppercase trace ID", "DELETE", c+"/traces/"+strings.ToUpper(id)+"/hold", "", nil)
	add("GET /v1/canvases/{canvasID}/holds", "holds: canvas not a UUID", "GET", "/v1/canvases/x/holds", "", nil)
	add("DELETE /v1/canvases/{canvasID}/toplevels/{tlid}", "forget: tlid negative", "DELETE", c+"/toplevels/-1", "", nil)
	add("DELETE /v1/canvases/{canvasID}/toplevels/{tlid}", "forget: tlid overflow", "DELETE", c+"/toplevels/99999999999999999999", "", nil)
	add("DELETE /v1/canvases/{canvasID}", "delete canvas: not a UUID", "DELETE", "/v1/canvases/..%2F..", "", nil)
	add("DELETE /v1/canvases/{canvasID}", "delete canvas: NUL", "DELETE", "/v1/canvases/"+canvasA+"%00", "", nil)
	for route := range routes {
		if strings.HasPrefix(route, "GET /v1/jobs/") {
			add(route, "job: not a UUID", "GET", "/v1/jobs/1", "", nil)
			add(route, "job: %2F", "GET", "/v1/jobs/%2F..%2F", "", nil)
		}
	}
	return hs
}

// hostileRig is a gateway with auth and the corpus of hostile requests
// for every route it serves; handler is the gateway's handler, addr where
// it listens (through the meter when one is given).
type hostileRig struct {
	g      *secureGateway
	dbURL  string
	addr   string
	token  string
	corpus []hostile
}

func newHostileRig(tb testing.TB, meter *cpuMeter) *hostileRig {
	dbURL := testutil.PG(tb)
	g := newSecureGateway(tb, dbURL, nil)
	h := g.Server.Handler()
	if meter != nil {
		h = meter.wrap(tb, h)
	}
	hs := httptest.NewServer(h)
	tb.Cleanup(hs.Close)
	routes := map[string]bool{}
	for _, r := range g.Server.Routes() {
		routes[r] = true
	}
	corpus := hostileCorpus(tb, routes)
	if len(corpus) < 50 {
		tb.Fatalf("corpus has %d requests, want at least 50", len(corpus))
	}
	return &hostileRig{g: g, dbURL: dbURL, addr: strings.TrimPrefix(hs.URL, "http://"),
		token: g.token(tb, httpapi.RoleAdmin, ""), corpus: corpus}
}

// TestHostileInputs sends every hostile request: each gets a 4xx with the
// API's error, and nothing is written. What each costs in CPU is
// BenchmarkHostileInputs'.
func TestHostileInputs(t *testing.T) {
	t.Parallel()
	rig := newHostileRig(t, nil)
	for i, h := range rig.corpus {
		resp, body := rawDo(t, rig.addr, rig.token, i, h)
		if resp.StatusCode < 400 || resp.StatusCode > 499 {
			t.Errorf("%s: status %d, want 4xx; body %.300s", h.name, resp.StatusCode, body)
			continue
		}
		if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge && resp.StatusCode != http.StatusBadRequest || bytes.HasPrefix(body, []byte("{")) {
			// Everything the gateway answers (all but net/http's own 400/431
			// for unparseable requests) is the API's JSON error.
			if code, _ := errorOf(t, body); code == "" {
				t.Errorf("%s: no error code in %s", h.name, body)
			}
		}
	}
	assertNothingWritten(t, rig.dbURL, rig.g)
}

// BenchmarkHostileInputs measures the handler CPU time of each hostile
// request (on its locked thread: the request's own work, not the
// collector's) and reports the costliest and the mean per request. A
// pathological input should cost at most a few milliseconds; the five
// costliest are logged with -v.
func BenchmarkHostileInputs(b *testing.B) {
	meter := &cpuMeter{cpu: map[string]time.Duration{}}
	checkMeter(b)
	rig := newHostileRig(b, meter)
	worst := map[string]time.Duration{}
	var total time.Duration
	n := 0
	for b.Loop() {
		for i, h := range rig.corpus {
			resp, _ := rawDo(b, rig.addr, rig.token, i, h)
			cpu := meter.get(resp.Header.Get("X-Request-Id"))
			worst[h.name] = max(worst[h.name], cpu)
			total += cpu
			n++
		}
	}
	names := slices.SortedFunc(maps.Keys(worst), func(x, y string) int { return cmp.Compare(worst[y], worst[x]) })
	b.ReportMetric(float64(worst[names[0]])/float64(time.Millisecond), "max-handler-ms")
	b.ReportMetric(float64(total)/float64(n)/float64(time.Microsecond), "mean-handler-µs")
	for _, name := range names[:min(5, len(names))] {
		b.Logf("  %8s  %s", worst[name], name)
	}
}

// checkMeter proves the meter sees CPU: a handler that burns 20ms of CPU
// on its locked thread (counted by the thread's clock, so a busy machine
// that descheduled it changes nothing) must measure at least 5ms.
func checkMeter(t testing.TB) {
	m := &cpuMeter{cpu: map[string]time.Duration{}}
	h := m.wrap(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-Id", "spin")
		x := 0
		for start := threadCPU(t); threadCPU(t)-start < 20*time.Millisecond; {
			x++
		}
		_ = x
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if got := m.get("spin"); got < 5*time.Millisecond {
		t.Fatalf("meter measured %s for a 20ms spin; the CPU bound would be meaningless", got)
	}
}

func (m *cpuMeter) get(id string) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cpu[id]
}

// assertNothingWritten checks that the index has no rows and the bucket no
// objects.
func assertNothingWritten(t *testing.T, dbURL string, g *secureGateway) {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	for _, table := range []string{"traces", "trace_tlids", "toplevels"} {
		var n int
		if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("table %s has %d rows after hostile requests, want 0", table, n)
		}
	}
	it := g.Emu.Client.Bucket(g.Emu.Bucket).Objects(t.Context(), nil)
	for {
		o, err := it.Next()
		if err == iterator.Done {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("object %s written by a hostile request", o.Name)
	}
}
