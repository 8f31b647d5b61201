package httpapi_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/tracegw/tracegw/internal/traces"
)

const canvas = "7d3f5a1c-0000-4000-8000-000000000001"

func tracesURL(g *gateway, c string) string { return g.URL + "/v1/canvases/" + c + "/traces" }

type saveResp struct {
	TraceID    string `json:"traceID"`
	Generation string `json:"generation"`
}

func save(t *testing.T, g *gateway, body string) saveResp {
	t.Helper()
	status, _, b := call(t, "POST", tracesURL(g, canvas), "application/json", []byte(body))
	if status != http.StatusCreated {
		t.Fatalf("save: status %d, body %s", status, b)
	}
	var r saveResp
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSaveGetJSONRoundTrip(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	doc := `{"rootTLID":"1234","tlids":["5678"],"timestamp":"2026-11-22T03:48:01.123Z",` +
		`"input":[["request",{"body":"hi","n":[1,2.5,null,true]}],["event",null]],` +
		`"functionResults":[{"tlid":"5678","exprID":"42","fnName":"HttpClient.get","hashVersion":0,"argHash":"a1b2","value":{"k":"v"}}]}`
	r := save(t, g, doc)
	status, hdr, b := call(t, "GET", tracesURL(g, canvas)+"/"+r.TraceID, "", nil)
	if status != http.StatusOK {
		t.Fatalf("get: %d %s", status, b)
	}
	if got, want := hdr.Get("ETag"), `"`+r.Generation+`"`; got != want {
		t.Errorf("ETag = %s, want %s", got, want)
	}
	var got, want map[string]any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(doc), &want); err != nil {
		t.Fatal(err)
	}
	want["traceID"] = r.TraceID
	want["tlids"] = []any{"5678", "1234"} // the root is added when missing
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("read back differs (-want +got):\n%s", d)
	}
}

func TestSaveGetMsgpackByteIdentical(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	// Values that JSON cannot express: bin, ext, int map keys, float32.
	value, err := msgpack.Marshal(map[any]any{int64(1): []byte{0, 1, 2}, "f": float32(1.5)})
	if err != nil {
		t.Fatal(err)
	}
	ext := []byte{0xd4, 0x05, 0x07} // fixext1, type 5
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	_ = enc.EncodeMapLen(3)
	_ = enc.EncodeString("rootTLID")
	_ = enc.EncodeUint(18446744073709551615)
	_ = enc.EncodeString("input")
	_ = enc.EncodeArrayLen(2)
	_ = enc.EncodeArrayLen(2)
	_ = enc.EncodeString("a")
	buf.Write(value)
	_ = enc.EncodeArrayLen(2)
	_ = enc.EncodeString("b")
	buf.Write(ext)
	_ = enc.EncodeString("timestamp")
	_ = enc.EncodeTime(time.Date(2026, 11, 22, 3, 4, 5, 6_000_000, time.UTC))
	status, _, b := call(t, "POST", tracesURL(g, canvas), "application/msgpack", buf.Bytes(), "Accept", "application/msgpack")
	if status != http.StatusCreated {
		t.Fatalf("save: %d %s", status, b)
	}
	var r struct {
		TraceID string `msgpack:"traceID"`
	}
	if err := msgpack.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	status, hdr, b := call(t, "GET", tracesURL(g, canvas)+"/"+r.TraceID, "", nil, "Accept", "application/msgpack")
	if status != http.StatusOK || hdr.Get("Content-Type") != "application/msgpack" {
		t.Fatalf("get: %d %s", status, hdr.Get("Content-Type"))
	}
	tr, err := traces.DecodeTrace(b, false, traces.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tr.Input[0].Value, value) || !bytes.Equal(tr.Input[1].Value, ext) {
		t.Errorf("values changed: got %x and %x, want %x and %x", tr.Input[0].Value, tr.Input[1].Value, value, ext)
	}
	if tr.RootTLID != 18446744073709551615 {
		t.Errorf("rootTLID = %d", tr.RootTLID)
	}
}

func TestSaveIdempotentRetryAndConflict(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	id := traces.NewTraceID(time.Now()).String()
	doc := `{"traceID":"` + id + `","rootTLID":"1","input":[["x",1]]}`
	first := save(t, g, doc)
	status, _, b := call(t, "POST", tracesURL(g, canvas), "application/json", []byte(doc))
	if status != http.StatusOK {
		t.Fatalf("retry: status %d %s, want 200", status, b)
	}
	var again saveResp
	_ = json.Unmarshal(b, &again)
	if again != first {
		t.Errorf("retry answered %+v, want %+v", again, first)
	}
	status, _, b = call(t, "POST", tracesURL(g, canvas), "application/json",
		[]byte(`{"traceID":"`+id+`","rootTLID":"1","input":[["x",2]]}`))
	if code, _ := errorOf(t, b); status != http.StatusConflict || code != "already_exists" {
		t.Fatalf("different body: %d %s, want 409 already_exists", status, b)
	}
}

func TestGetUnknownAndDeletedBehindIndex(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	status, _, b := call(t, "GET", tracesURL(g, canvas)+"/"+traces.NewTraceID(time.Now()).String(), "", nil)
	if code, _ := errorOf(t, b); status != 404 || code != "not_found" {
		t.Fatalf("unknown: %d %s", status, b)
	}
	r := save(t, g, `{"rootTLID":"9"}`)
	c, _ := traces.ParseCanvasID(canvas)
	id, _ := traces.ParseTraceID(r.TraceID)
	if err := g.GCS.Delete(t.Context(), traces.TraceKey(c, id), 0); err != nil {
		t.Fatal(err)
	}
	status, _, b = call(t, "GET", tracesURL(g, canvas)+"/"+r.TraceID, "", nil)
	if status != 404 {
		t.Fatalf("deleted object: %d %s", status, b)
	}
	if _, err := g.DB.Get(t.Context(), c, id); !errorsIsNotFound(err) {
		t.Errorf("index rows still there after a read found the object gone: %v", err)
	}
	if list := listTLID(t, g, "9", 10); len(list) != 0 {
		t.Errorf("tlid 9 still lists %v", list)
	}
}

type item struct {
	TraceID   string `json:"traceID"`
	Timestamp string `json:"timestamp"`
	RootTLID  string `json:"rootTLID"`
	Held      bool   `json:"held"`
}

func listTLID(t *testing.T, g *gateway, tlid string, limit int) []item {
	t.Helper()
	status, _, b := call(t, "GET", fmt.Sprintf("%s/v1/canvases/%s/toplevels/%s/traces?limit=%d", g.URL, canvas, tlid, limit), "", nil)
	if status != 200 {
		t.Fatalf("list: %d %s", status, b)
	}
	var r struct{ Traces []item }
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r.Traces
}

func TestListNewestFirstFunctionsAndBatch(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 15 {
		ts := base.Add(time.Duration(i) * time.Minute).Format(time.RFC3339Nano)
		tl := `["77"]`
		if i%2 == 1 {
			tl = `[]`
		}
		ids = append(ids, save(t, g, `{"rootTLID":"100","tlids":`+tl+`,"timestamp":"`+ts+`"}`).TraceID)
	}
	got := listTLID(t, g, "100", 10)
	if len(got) != 10 {
		t.Fatalf("got %d items, want 10", len(got))
	}
	for i, it := range got {
		if want := ids[14-i]; it.TraceID != want || it.RootTLID != "100" {
			t.Errorf("item %d = %+v, want trace %s of root 100", i, it, want)
		}
	}
	if got[0].Timestamp != "2026-11-01T00:14:00.000Z" {
		t.Errorf("timestamp = %s", got[0].Timestamp)
	}
	fn := listTLID(t, g, "77", 100)
	if len(fn) != 8 || fn[0].TraceID != ids[14] || fn[7].TraceID != ids[0] {
		t.Errorf("function tlid 77 lists %d items (%v), want the 8 even traces newest first", len(fn), fn)
	}
	status, _, b := call(t, "POST", g.URL+"/v1/canvases/"+canvas+"/recent-traces", "application/json",
		[]byte(`{"tlids":["100",77,"5"],"limit":3}`))
	if status != 200 {
		t.Fatalf("batch: %d %s", status, b)
	}
	var batch struct{ Toplevels map[string][]item }
	if err := json.Unmarshal(b, &batch); err != nil {
		t.Fatal(err)
	}
	if n := len(batch.Toplevels["100"]); n != 3 || batch.Toplevels["100"][0].TraceID != ids[14] {
		t.Errorf("batch 100: %v", batch.Toplevels["100"])
	}
	if n := len(batch.Toplevels["77"]); n != 3 || batch.Toplevels["77"][2].TraceID != ids[10] {
		t.Errorf("batch 77: %v", batch.Toplevels["77"])
	}
	if l, ok := batch.Toplevels["5"]; !ok || len(l) != 0 {
		t.Errorf("batch 5 = %v, %v; want present and empty", l, ok)
	}
	// The admin lookup by ID alone.
	status, _, b = call(t, "GET", g.URL+"/v1/traces/"+ids[3], "", nil)
	if status != 200 || !strings.Contains(string(b), `"canvasID":"`+canvas+`"`) {
		t.Errorf("find: %d %s", status, b)
	}
}

func TestInvalidRequests(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	far := traces.NewTraceID(time.Now().Add(-72 * time.Hour)).String()
	v4 := "0e3f5a1c-1234-4abc-8def-0123456789ab"
	big := `{"rootTLID":"1","input":[["x","` + strings.Repeat("a", 1<<20) + `"]]}`
	cases := []struct {
		name, method, path, ct, body string
		status                       int
		code, field                  string
	}{
		{"canvas not a uuid", "POST", "/v1/canvases/abc/traces", "application/json", `{"rootTLID":"1"}`, 400, "invalid_argument", "canvasID"},
		{"canvas uppercase", "POST", "/v1/canvases/" + strings.ToUpper(canvas) + "/traces", "application/json", `{"rootTLID":"1"}`, 400, "invalid_argument", "canvasID"},
		{"trace id not v7", "GET", "/v1/canvases/" + canvas + "/traces/" + v4, "", "", 400, "invalid_argument", "traceID"},
		{"trace id with slash", "GET", "/v1/canvases/" + canvas + "/traces/a%2Fb", "", "", 400, "invalid_argument", "traceID"},
		{"dot dot", "GET", "/v1/canvases/" + canvas + "/traces/../x", "", "", 400, "invalid_argument", "path"},
		{"tlid not a number", "GET", "/v1/canvases/" + canvas + "/toplevels/x1/traces", "", "", 400, "invalid_argument", "tlid"},
		{"tlid negative", "GET", "/v1/canvases/" + canvas + "/toplevels/-1/traces", "", "", 400, "invalid_argument", "tlid"},
		{"limit zero", "GET", "/v1/canvases/" + canvas + "/toplevels/1/traces?limit=0", "", "", 400, "invalid_argument", "limit"},
		{"limit over max", "GET", "/v1/canvases/" + canvas + "/toplevels/1/traces?limit=101", "", "", 400, "invalid_argument", "limit"},
		{"limit not a number", "GET", "/v1/canvases/" + canvas + "/toplevels/1/traces?limit=ten", "", "", 400, "invalid_argument", "limit"},
		{"missing rootTLID", "POST", "/v1/canvases/" + canvas + "/traces", "application/json", `{"tlids":["1"]}`, 400, "invalid_argument", "rootTLID"},
		{"rootTLID wrong type", "POST", "/v1/canvases/" + canvas + "/traces", "application/json", `{"rootTLID":true}`, 400, "invalid_argument", "rootTLID"},
		{"malformed json", "POST", "/v1/canvases/" + canvas + "/traces", "application/json", `{"rootTLID":`, 400, "invalid_argument", "rootTLID"},
		{"truncated msgpack", "POST", "/v1/canvases/" + canvas + "/traces", "application/msgpack", "\x81\xa8rootTLID", 400, "invalid_argument", "rootTLID"},
		{"caller id far from timestamp", "POST", "/v1/canvases/" + canvas + "/traces", "application/json", `{"traceID":"` + far + `","rootTLID":"1","timestamp":"2026-11-22T00:00:00Z"}`, 400, "invalid_argument", "traceID"},
		{"timestamp in the future", "POST", "/v1/canvases/" + canvas + "/traces", "application/json", `{"rootTLID":"1","timestamp":"2100-01-01T00:00:00Z"}`, 400, "invalid_argument", "timestamp"},
		{"caller id in the future", "POST", "/v1/canvases/" + canvas + "/traces", "application/json", `{"traceID":"` + traces.NewTraceID(time.Now().Add(72*time.Hour)).String() + `","rootTLID":"1"}`, 400, "invalid_argument", "traceID"},
		{"caller id not v7", "POST", "/v1/canvases/" + canvas + "/traces", "application/json", `{"traceID":"` + v4 + `","rootTLID":"1"}`, 400, "invalid_argument", "traceID"},
		{"no content type", "POST", "/v1/canvases/" + canvas + "/traces", "", `{"rootTLID":"1"}`, 415, "unsupported_media_type", ""},
		{"text content type", "POST", "/v1/canvases/" + canvas + "/traces", "text/plain", `{"rootTLID":"1"}`, 415, "unsupported_media_type", ""},
		{"body too large", "POST", "/v1/canvases/" + canvas + "/traces", "application/json", big, 413, "payload_too_large", "body"},
		{"10,001 toplevels through function results", "POST", "/v1/canvases/" + canvas + "/traces", "application/json", wideResults(1, 10_001), 413, "payload_too_large", "tlids"},
		{"batch without tlids", "POST", "/v1/canvases/" + canvas + "/recent-traces", "application/json", `{"limit":3}`, 400, "invalid_argument", "tlids"},
		{"batch limit too big", "POST", "/v1/canvases/" + canvas + "/recent-traces", "application/json", `{"tlids":["1"],"limit":1000}`, 400, "invalid_argument", "limit"},
		{"unknown route", "GET", "/v1/nothing", "", "", 404, "not_found", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, b := call(t, tc.method, g.URL+tc.path, tc.ct, []byte(tc.body))
			code, field := errorOf(t, b)
			if status != tc.status || code != tc.code || field != tc.field {
				t.Errorf("got %d %s field %q (%s), want %d %s field %q", status, code, field, b, tc.status, tc.code, tc.field)
			}
		})
	}
	// Nothing was written by any of them.
	if list := listTLID(t, g, "1", 100); len(list) != 0 {
		t.Errorf("invalid requests wrote %d traces", len(list))
	}
}

// wideResults is a trace of root 1 with n function results, of the
// toplevels first to first+n-1.
func wideResults(first, n int) string {
	var b strings.Builder
	b.WriteString(`{"rootTLID":"1","functionResults":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"tlid":"%d","exprID":"1","fnName":"f","value":0}`, first+i)
	}
	b.WriteString("]}")
	return b.String()
}

// TestFindTraceEveryCanvas: two canvases hold the same (caller-supplied)
// trace ID; the admin lookup answers the first at the top level, as for a
// single match, and lists both in "matches" (JSON and msgpack alike).
func TestFindTraceEveryCanvas(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	id := traces.NewTraceID(time.Now()).String()
	const low, high = "7d3f5a1c-0000-4000-8000-000000000001", "7d3f5a1c-0000-4000-8000-000000000002"
	for _, c := range []string{high, low} {
		root := map[string]string{low: "11", high: "22"}[c]
		if status, _, b := call(t, "POST", tracesURL(g, c), "application/json",
			[]byte(`{"traceID":"`+id+`","rootTLID":"`+root+`"}`)); status != http.StatusCreated {
			t.Fatalf("save in %s: %d %s", c, status, b)
		}
	}
	type match struct{ CanvasID, TraceID, RootTLID string }
	var found struct {
		match
		Matches     []match
		MoreMatches bool
	}
	status, _, b := call(t, "GET", g.URL+"/v1/traces/"+id, "", nil)
	if status != http.StatusOK {
		t.Fatalf("find: %d %s", status, b)
	}
	if err := json.Unmarshal(b, &found); err != nil {
		t.Fatal(err)
	}
	want := []match{{low, id, "11"}, {high, id, "22"}}
	if found.match != want[0] || !slices.Equal(found.Matches, want) || found.MoreMatches {
		t.Errorf("find = %s\nwant the first at the top level and matches %v", b, want)
	}
	status, _, b = call(t, "GET", g.URL+"/v1/traces/"+id, "", nil, "Accept", "application/msgpack")
	var mp map[string]any
	if err := msgpack.Unmarshal(b, &mp); status != http.StatusOK || err != nil {
		t.Fatalf("find as msgpack: %d %v", status, err)
	}
	if ms, _ := mp["matches"].([]any); fmt.Sprintf("%s", mp["canvasID"]) != low || len(ms) != 2 {
		t.Errorf("find as msgpack = %v, want canvasID %s and 2 matches", mp, low)
	}
}
