package clientcompat_test

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
)

// The client module encodes and decodes the gateway's msgpack documents
// with its own code; these tests hold it to the server's codec (internal/
// traces), which is what the gateway reads and writes: every request body
// byte for byte, and every answer decoded to the same result or failing
// with the same error.

// recorder is a loopback server that records each request and answers
// with the status and body set for it.
type recorder struct {
	mu     sync.Mutex
	reqs   []recorded
	status int
	header http.Header
	body   []byte
}

type recorded struct {
	Method, Path, RawQuery             string
	ContentType, Accept, IfMatch, Auth string
	Body                               []byte
}

func newRecorder(t *testing.T) (*recorder, *client.Client) {
	t.Helper()
	rec := &recorder{status: http.StatusOK}
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	c := client.New(srv.URL, "tok", client.WithRetry(1, time.Millisecond, time.Millisecond))
	t.Cleanup(c.Close)
	return rec, c
}

func (rec *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if r.Header.Get("Content-Encoding") == "gzip" {
		// Saves come compressed: record the document.
		if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
			body, _ = io.ReadAll(zr)
		}
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.reqs = append(rec.reqs, recorded{r.Method, r.URL.EscapedPath(), r.URL.RawQuery,
		r.Header.Get("Content-Type"), r.Header.Get("Accept"), r.Header.Get("If-Match"), r.Header.Get("Authorization"), body})
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.status)
	_, _ = w.Write(rec.body)
}

// answer sets what the next requests get.
func (rec *recorder) answer(status int, body []byte, header ...string) {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.status, rec.body, rec.header = status, body, http.Header{}
	for i := 0; i+1 < len(header); i += 2 {
		rec.header.Set(header[i], header[i+1])
	}
}

// last returns the request the last call sent and forgets all of them.
func (rec *recorder) last(t *testing.T) recorded {
	t.Helper()
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.reqs) != 1 {
		t.Fatalf("%d requests recorded, want 1", len(rec.reqs))
	}
	r := rec.reqs[0]
	rec.reqs = nil
	return r
}

// checkRequest compares a recorded request with the one wanted; bodies
// are compared as bytes (cmp would walk them byte by byte).
func checkRequest(t *testing.T, what string, want, got recorded) {
	t.Helper()
	if !bytes.Equal(want.Body, got.Body) {
		t.Fatalf("%s: body differs from the server's encoder\n got %x\nwant %x", what, got.Body, want.Body)
	}
	want.Body, got.Body = nil, nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("%s: request (-want +got):\n%s", what, diff)
	}
}

// genTrace is a random trace that exercises every encoding width: IDs and
// counts below and above each msgpack format boundary, long and non-ASCII
// strings, negative hash versions, empty and nested values, timestamps
// with and without nanoseconds.
func genTrace(rng *rand.Rand, withID bool) *client.Trace {
	u64 := func() uint64 {
		switch rng.IntN(5) {
		case 0:
			return rng.Uint64N(128)
		case 1:
			return rng.Uint64N(1 << 16)
		case 2:
			return rng.Uint64N(1 << 32)
		case 3:
			return rng.Uint64()
		}
		return uint64(rng.IntN(3)) + 0xff // 255…257
	}
	str := func() string {
		n := []int{0, 5, 31, 32, 255, 256}[rng.IntN(6)]
		if rng.IntN(50) == 0 {
			n = 65_535 + rng.IntN(2) // the 2- and 4-byte length formats
		}
		if rng.IntN(4) == 0 {
			return strings.Repeat("é", n/2)
		}
		return strings.Repeat("a", n)
	}
	value := func() client.Value {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return client.MustValue(str())
		case 2:
			return client.MustValue(map[string]any{"body": str(), "n": -int64(u64() >> 1), "list": []any{1.5, true, nil}})
		}
		return client.MustValue([]any{[]any{[]any{u64()}}})
	}
	t := &client.Trace{RootTLID: client.TLID(u64())}
	for range []int{0, 1, 3, 16, 300}[rng.IntN(5)] {
		t.TLIDs = append(t.TLIDs, client.TLID(u64()))
	}
	switch rng.IntN(3) {
	case 1:
		t.Timestamp = time.UnixMilli(int64(rng.Uint64N(1 << 41))).UTC()
	case 2:
		t.Timestamp = time.Unix(int64(rng.Uint64N(1<<33)), int64(rng.IntN(1e9))).UTC()
	}
	if withID {
		ts := t.Timestamp
		if ts.IsZero() {
			ts = time.Unix(1_800_000_000, 0)
		}
		t.ID = client.NewTraceID(ts)
	}
	for range rng.IntN(4) {
		t.Input = append(t.Input, client.InputVar{Name: str(), Value: value()})
	}
	for range []int{0, 1, 2, 17}[rng.IntN(4)] {
		t.FunctionResults = append(t.FunctionResults, client.FunctionResult{
			TLID: client.TLID(u64()), ExprID: u64(), FnName: str(), HashVersion: int64(u64()) >> rng.IntN(64),
			ArgHash: str(), Value: value(),
		})
	}
	return t
}

// toServer is t as the server's codec holds it.
func toServer(t *testing.T, c *client.Trace) *traces.Trace {
	t.Helper()
	out := &traces.Trace{RootTLID: traces.TLID(c.RootTLID), Timestamp: c.Timestamp}
	if c.ID != "" {
		id, err := traces.ParseTraceID(string(c.ID))
		if err != nil {
			t.Fatal(err)
		}
		out.ID = id
	}
	for _, v := range c.TLIDs {
		out.TLIDs = append(out.TLIDs, traces.TLID(v))
	}
	out.Input = inputToServer(c.Input)
	out.FunctionResults = resultsToServer(c.FunctionResults)
	return out
}

func inputToServer(in []client.InputVar) []traces.InputVar {
	out := make([]traces.InputVar, len(in))
	for i, v := range in {
		out[i] = traces.InputVar{Name: v.Name, Value: traces.Value(v.Value)}
	}
	return out
}

func resultsToServer(in []client.FunctionResult) []traces.FunctionResult {
	out := make([]traces.FunctionResult, len(in))
	for i, r := range in {
		out[i] = traces.FunctionResult{TLID: traces.TLID(r.TLID), ExprID: r.ExprID, FnName: r.FnName,
			HashVersion: r.HashVersion, ArgHash: r.ArgHash, Value: traces.Value(r.Value)}
	}
	return out
}

// fromServer is how the client presented a trace the server's decoder read
// before it had a decoder of its own.
func fromServer(t *traces.Trace) *client.Trace {
	out := &client.Trace{ID: client.TraceID(t.ID.String()), RootTLID: client.TLID(t.RootTLID), Timestamp: t.Timestamp,
		TLIDs: make([]client.TLID, len(t.TLIDs)), Input: make([]client.InputVar, len(t.Input)),
		FunctionResults: make([]client.FunctionResult, len(t.FunctionResults))}
	for i, v := range t.TLIDs {
		out.TLIDs[i] = client.TLID(v)
	}
	for i, v := range t.Input {
		out.Input[i] = client.InputVar{Name: v.Name, Value: client.Value(v.Value)}
	}
	for i, r := range t.FunctionResults {
		out.FunctionResults[i] = client.FunctionResult{TLID: client.TLID(r.TLID), ExprID: r.ExprID, FnName: r.FnName,
			HashVersion: r.HashVersion, ArgHash: r.ArgHash, Value: client.Value(r.Value)}
	}
	return out
}

// summariesFromServer is how the client presents what the server's decoder
// read, Kept.Because reduced to what the server's decoder keeps of it
// ("recent"; latest and held come from latestFor and held): see
// sameWords.
func summariesFromServer(in []traces.Summary) []client.Summary {
	out := make([]client.Summary, len(in))
	for i, s := range in {
		out[i] = client.Summary{ID: client.TraceID(s.ID.String()), Timestamp: s.Timestamp, RootTLID: client.TLID(s.RootTLID), Held: s.Held}
		out[i].Kept.Because = []string{}
		if s.Kept.Recent {
			out[i].Kept.Because = []string{client.KeptRecent}
		}
		for _, t := range s.Kept.LatestFor {
			out[i].Kept.LatestFor = append(out[i].Kept.LatestFor, client.TLID(t))
		}
		out[i].Kept.ExpiresAfter = s.Kept.ExpiresAfter
	}
	return out
}

// sameWords reduces the client's Kept.Because to the words the server's
// decoder keeps (it re-derives latest and held), so answers mutated inside
// a word compare alike; an absent keptBecause is an empty one.
func sameWords(list []client.Summary) []client.Summary {
	out := slices.Clone(list)
	for i := range out {
		w := []string{}
		if slices.Contains(out[i].Kept.Because, client.KeptRecent) {
			w = []string{client.KeptRecent}
		}
		out[i].Kept.Because = w
	}
	return out
}

// genKept is a random judgement, as the server writes it.
func genKept(rng *rand.Rand, held bool) traces.Kept {
	var k traces.Kept
	if rng.IntN(2) == 0 {
		for range 1 + rng.IntN(3) {
			k.LatestFor = append(k.LatestFor, traces.TLID(rng.Uint64()))
		}
		slices.Sort(k.LatestFor)
	}
	k.Recent = rng.IntN(3) > 0
	if !held && len(k.LatestFor) == 0 {
		k.ExpiresAfter = time.UnixMilli(1_800_000_000_000 + rng.Int64N(1e9)).UTC()
	}
	return k
}

const canvas = client.CanvasID("7d3f5a1c-0000-4000-8000-00000000000a")

// storedDoc is the document the gateway stores for tr: decoded (tlids
// deduplicated, the root added) and prepared (the timestamp from the ID
// when absent, UTC in whole milliseconds) as a save does.
func storedDoc(t *testing.T, tr *client.Trace) []byte {
	t.Helper()
	st, err := traces.DecodeTrace(traces.AppendTraceMsgpack(nil, toServer(t, tr)), false, traces.Limits{MaxTLIDs: 1 << 20, MaxFunctionResults: 1 << 20})
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !st.ID.IsZero() {
		if err := tracestore.Prepare(st, st.ID.Time()); err != nil {
			t.Fatalf("prepare: %v", err)
		}
	} else if !st.Timestamp.IsZero() {
		st.Timestamp = st.Timestamp.UTC().Truncate(time.Millisecond)
	}
	return traces.AppendTraceMsgpack(nil, st)
}

func TestRequestsMatchTheServerCodec(t *testing.T) {
	t.Parallel()
	rec, c := newRecorder(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		tr := genTrace(rng, i%2 == 0)
		want := storedDoc(t, tr)
		got, err := client.EncodeTrace(tr)
		if err != nil {
			t.Fatalf("trace %d: EncodeTrace: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("trace %d: EncodeTrace differs from the document the gateway stores\n got %x\nwant %x", i, got, want)
		}

		rec.answer(http.StatusCreated, []byte(`{"traceID":"`+string(tr.ID)+`","generation":"7"}`))
		if _, err := c.Save(ctx, canvas, tr); err != nil {
			t.Fatalf("trace %d: Save: %v", i, err)
		}
		// Save gives the trace an ID first when it has none, and sends the
		// document the gateway stores.
		want = storedDoc(t, tr)
		checkRequest(t, fmt.Sprintf("trace %d: Save", i), recorded{"POST", "/v1/canvases/" + string(canvas) + "/traces", "", "application/msgpack", "", "", "Bearer tok", want}, rec.last(t))

		id := client.NewTraceID(time.Now())
		rec.answer(http.StatusOK, []byte(`{"traceID":"`+string(id)+`","generation":"8"}`))
		if _, err := c.Replace(ctx, canvas, id, tr, 42); err != nil {
			t.Fatalf("trace %d: Replace: %v", i, err)
		}
		st := toServer(t, tr)
		st.ID, _ = traces.ParseTraceID(string(id))
		want = traces.AppendTraceMsgpack(nil, st)
		checkRequest(t, fmt.Sprintf("trace %d: Replace", i), recorded{"PUT", "/v1/canvases/" + string(canvas) + "/traces/" + string(id), "", "application/msgpack", "", `"42"`, "Bearer tok", want}, rec.last(t))

		rec.answer(http.StatusCreated, []byte(`{"traceID":"`+string(id)+`","layer":1}`))
		if _, err := c.AddFunctionResults(ctx, canvas, id, tr.TLIDs, tr.FunctionResults); err != nil {
			t.Fatalf("trace %d: AddFunctionResults: %v", i, err)
		}
		var tlids []traces.TLID
		for _, v := range tr.TLIDs {
			tlids = append(tlids, traces.TLID(v))
		}
		want = traces.AppendLayerMsgpack(nil, tlids, resultsToServer(tr.FunctionResults))
		checkRequest(t, fmt.Sprintf("trace %d: AddFunctionResults", i), recorded{"POST", "/v1/canvases/" + string(canvas) + "/traces/" + string(id) + "/function-results", "", "application/msgpack", "", "", "Bearer tok", want}, rec.last(t))

		u := client.Unmatched{Module: "HTTP", Path: "/users/" + fmt.Sprint(i), Modifier: []string{"", "GET"}[i%2], Input: tr.Input}
		rec.answer(http.StatusCreated, []byte(`{"traceID":"`+string(id)+`"}`))
		if _, err := c.SaveUnmatched(ctx, canvas, u); err != nil {
			t.Fatalf("trace %d: SaveUnmatched: %v", i, err)
		}
		want = traces.AppendUnmatchedMsgpack(nil, traces.Unmatched{Module: u.Module, Path: u.Path, Modifier: u.Modifier, Input: inputToServer(u.Input)})
		checkRequest(t, fmt.Sprintf("trace %d: SaveUnmatched", i), recorded{"POST", "/v1/canvases/" + string(canvas) + "/unmatched-requests", "", "application/msgpack", "", "", "Bearer tok", want}, rec.last(t))
	}
}

// mutations are body and every way of breaking it that a byte can: each
// prefix, and each byte replaced by a few that change its meaning (nil,
// the never-used 0xc1, a fixint, a 4-byte map header, a negative fixint,
// short strings).
func mutations(body []byte) [][]byte {
	out := [][]byte{body}
	for i := range body {
		out = append(out, body[:i])
	}
	for i := range body {
		for _, c := range []byte{0xc0, 0xc1, 0x00, 0xdf, 0xff, 0xa0, 0xa1} {
			if body[i] == c {
				continue
			}
			m := bytes.Clone(body)
			m[i] = c
			out = append(out, m)
		}
	}
	return append(out, append(bytes.Clone(body), 0xc0)) // trailing data
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestAnswersDecodeLikeTheServerCodec(t *testing.T) {
	t.Parallel()
	rec, c := newRecorder(t)
	ctx := t.Context()
	rng := rand.New(rand.NewPCG(3, 4))
	id := client.NewTraceID(time.Unix(1_800_000_000, 0))

	var docs [][]byte
	for i := range 20 {
		tr := genTrace(rng, i%2 == 0)
		if i < 4 { // small documents, mutated byte by byte below
			tr.TLIDs, tr.Input, tr.FunctionResults = tr.TLIDs[:min(2, len(tr.TLIDs))], nil, nil
			tr.FunctionResults = []client.FunctionResult{{TLID: 5, ExprID: 300, FnName: "f", HashVersion: -1, ArgHash: "ab", Value: client.MustValue([]any{1, "x"})}}
			tr.Input = []client.InputVar{{Name: "request", Value: client.MustValue(map[string]any{"a": nil})}}
		}
		docs = append(docs, traces.AppendTraceMsgpack(nil, toServer(t, tr)))
	}
	// Keys the server's decoder accepts though its encoder never writes them.
	docs = append(docs, []byte("\x84\xa8rootTLID\xa3123\xa5tlids\x92\xa11\x01\xa9timestamp\xb42026-11-22T03:48:01Z\xa5extra\x91\xc0"))
	checked := 0
	for di, doc := range docs {
		bodies := [][]byte{doc}
		if di < 4 || di == len(docs)-1 {
			bodies = mutations(doc)
		}
		for _, body := range bodies {
			var want *client.Trace
			// The client reads answers as the server reads its stored
			// traces: keys it does not know are skipped, text is not checked.
			st, serr := traces.DecodeStoredTrace(body, traces.DefaultLimits)
			wantErr := "<nil>"
			if serr != nil {
				wantErr = fmt.Sprintf("get trace %s: decode: %v", id, serr)
			} else {
				want = fromServer(st)
			}
			rec.answer(http.StatusOK, body, "ETag", `"12"`)
			got, gen, err := c.Get(ctx, canvas, id)
			rec.last(t)
			if errText(err) != wantErr {
				t.Fatalf("doc %d body %x: Get error = %v, want %s", di, body, err, wantErr)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("doc %d body %x: Get (-server +client):\n%s", di, body, diff)
			}
			if err == nil && gen != 12 {
				t.Fatalf("Get generation = %d, want 12", gen)
			}
			checked++
		}
	}

	// Lists: one toplevel's, and a batch of several.
	var lists [][]traces.Summary
	for i := range 6 {
		var l []traces.Summary
		for j := range []int{0, 1, 10, 16}[i%4] {
			l = append(l, traces.Summary{ID: traces.NewTraceID(time.UnixMilli(int64(1_800_000_000_000 + j))),
				Timestamp: time.UnixMilli(int64(1_800_000_000_000 + j)).UTC(), RootTLID: traces.TLID(rng.Uint64()), Held: j%3 == 0,
				Kept: genKept(rng, j%3 == 0)})
		}
		lists = append(lists, l)
	}
	for li, l := range lists {
		doc := traces.AppendTraceListMsgpack(nil, l)
		bodies := [][]byte{doc, nil}
		if li == 2 {
			bodies = append(mutations(doc), nil,
				[]byte("\x81\xa6traces\x91\x81\xa0\xc1"),           // an empty unknown key, a bad value
				[]byte("\x81\xa6traces\x91\x81\xa7traceID\xa3abc"), // a bad ID
				[]byte("\x82\xa6traces\x90\xa6traces\x90"),         // twice
				[]byte("\x81\xa6traces\x91\x81\xa4held\xa4true"))   // a string for a bool
		}
		for _, body := range bodies {
			sl, serr := traces.DecodeTraceList(body, traces.Limits{MaxBody: int64(len(body)) + 1}.OrDefault())
			var want []client.Summary
			wantErr := "<nil>"
			if serr != nil {
				wantErr = fmt.Sprintf("recent traces of 7: decode: %v", serr)
			} else {
				want = summariesFromServer(sl)
			}
			rec.answer(http.StatusOK, body)
			got, err := c.Recent(ctx, canvas, 7, 10)
			if r := rec.last(t); r.RawQuery != "limit=10" || r.Accept != "application/msgpack" || r.Path != "/v1/canvases/"+string(canvas)+"/toplevels/7/traces" {
				t.Fatalf("Recent request = %+v", r)
			}
			if errText(err) != wantErr {
				t.Fatalf("list %d body %x: Recent error = %v, want %s", li, body, err, wantErr)
			}
			if diff := cmp.Diff(want, sameWords(got)); diff != "" {
				t.Fatalf("list %d body %x: Recent (-server +client):\n%s", li, body, diff)
			}
			if bytes.Equal(body, doc) {
				// Unmutated, the words are the server's exactly.
				for i, s := range l {
					if w := s.Kept.KeptBecause(s.Held); !slices.Equal(got[i].Kept.Because, w) {
						t.Fatalf("list %d item %d: keptBecause %v, want %v", li, i, got[i].Kept.Because, w)
					}
				}
			}
			checked++
		}
	}

	// Search pages, with and without a next cursor.
	for li, l := range lists {
		cursor := ""
		if li%2 == 1 {
			cursor = "AQGiAV41aHTInhKwPgjKsgI"
		}
		doc := traces.AppendSearchMsgpack(nil, l, cursor)
		bodies := [][]byte{doc}
		if li == 3 {
			bodies = append(mutations(doc), nil)
		}
		for _, body := range bodies {
			sl, scur, serr := traces.DecodeSearch(body, traces.Limits{MaxBody: int64(len(body)) + 1}.OrDefault())
			want := client.SearchPage{Traces: summariesFromServer(sl), NextCursor: scur}
			wantErr := "<nil>"
			if serr != nil {
				want, wantErr = client.SearchPage{}, fmt.Sprintf("search traces of %s: decode: %v", canvas, serr)
			}
			rec.answer(http.StatusOK, body)
			got, err := c.Search(ctx, canvas, client.SearchQuery{TLID: 9, Prefix: "01a2", Limit: 3, Cursor: "AQ",
				Since: time.Date(2026, 11, 22, 3, 48, 1, 5e8, time.UTC), Until: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)})
			if r := rec.last(t); r.RawQuery != "cursor=AQ&limit=3&prefix=01a2&since=2026-11-22T03%3A48%3A01.5Z&tlid=9&until=2026-11-23T00%3A00%3A00Z" ||
				r.Accept != "application/msgpack" || r.Path != "/v1/canvases/"+string(canvas)+"/traces" {
				t.Fatalf("Search request = %+v", r)
			}
			if errText(err) != wantErr {
				t.Fatalf("page %d body %x: Search error = %v, want %s", li, body, err, wantErr)
			}
			got.Traces = sameWords(got.Traces)
			if err == nil && len(want.Traces) == 0 {
				want.Traces = []client.Summary{}
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("page %d body %x: Search (-server +client):\n%s", li, body, diff)
			}
			checked++
		}
	}

	asked := []client.TLID{1, 2, 3, 1 << 40}
	batch := map[traces.TLID][]traces.Summary{1: lists[1], 2: lists[2], 1 << 40: lists[3], 99: lists[0]}
	doc := traces.AppendToplevelsMsgpack(nil, map[traces.TLID][]traces.Summary{1: lists[1], 2: lists[2]})
	for _, body := range append(append(mutations(doc), nil), traces.AppendToplevelsMsgpack(nil, batch)) {
		sm, serr := traces.DecodeToplevels(body, traces.Limits{MaxBody: int64(len(body)) + 1}.OrDefault())
		var want map[client.TLID][]client.Summary
		wantErr := "<nil>"
		if serr != nil {
			wantErr = fmt.Sprintf("recent traces of %d toplevels: decode: %v", len(asked), serr)
		} else {
			want = map[client.TLID][]client.Summary{}
			for _, a := range asked {
				want[a] = []client.Summary{}
			}
			for k, l := range sm {
				want[client.TLID(k)] = summariesFromServer(l)
			}
		}
		rec.answer(http.StatusOK, body)
		got, err := c.RecentMany(ctx, canvas, asked, 3)
		if r := rec.last(t); string(r.Body) != `{"tlids":["1","2","3","1099511627776"],"limit":3}` || r.ContentType != "application/json" || r.Accept != "application/msgpack" {
			t.Fatalf("RecentMany request = %+v", r)
		}
		if errText(err) != wantErr {
			t.Fatalf("batch body %x: RecentMany error = %v, want %s", body, err, wantErr)
		}
		for k, l := range got {
			got[k] = sameWords(l)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("batch body %x: RecentMany (-server +client):\n%s", body, diff)
		}
		checked++
	}
	t.Logf("%d answers decoded alike", checked)
}
