package traces

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const testTraceID = "0190c3f2-8a4b-7c3d-9e1f-123456789abc"

func mustTraceID(t testing.TB, s string) TraceID {
	t.Helper()
	id, err := ParseTraceID(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// richTrace has values of every msgpack kind, the ones JSON cannot express
// included.
func richTrace(t testing.TB) *Trace {
	return &Trace{
		ID:        mustTraceID(t, testTraceID),
		RootTLID:  1234,
		TLIDs:     []TLID{1234, 5678, 18446744073709551615},
		Timestamp: time.Date(2026, 11, 22, 3, 48, 1, 123456789, time.UTC),
		Input: []InputVar{
			{Name: "request", Value: enc(obj{"body", "héllo", "headers", obj{"a", []any{1, -1, i64(-70000), uint64(1 << 63)}}})},
			{Name: "event", Value: enc(nil)},
			{Name: "bin", Value: enc(bin{0, 1, 254, 255})},
		},
		FunctionResults: []FunctionResult{
			{TLID: 5678, ExprID: 42, FnName: "HttpClient.get", HashVersion: 1, ArgHash: "a1b2", Value: enc(obj{1, "int key", -2, f32(0.1), nil, true, obj{"k", 1}, 2.5})},
			{TLID: 5678, ExprID: 18446744073709551615, FnName: "Time.now", HashVersion: -1, Value: enc([]any{
				time.Unix(1_700_000_000, 0), time.Unix(1_700_000_000, 7), time.Unix(1<<35, 1),
				ext{typ: 5, data: []byte("abc")}, f32(float32(1) / 3), []any{[]any{[]any{}}},
			})},
			{TLID: 1, ExprID: 0, FnName: "", Value: enc(strings.Repeat("x", 70000))},
		},
	}
}

func TestTraceMsgpackRoundTrip(t *testing.T) {
	want := richTrace(t)
	body := AppendTraceMsgpack(nil, want)
	got, err := DecodeTrace(body, false, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("DecodeTrace(AppendTraceMsgpack(t)) mismatch (-want +got):\n%s", diff)
	}
	// Values are the received bytes themselves.
	for i, fr := range got.FunctionResults {
		if !bytes.Equal(fr.Value, want.FunctionResults[i].Value) {
			t.Errorf("functionResults[%d].value: got %x, want %x", i, fr.Value, want.FunctionResults[i].Value)
		}
	}
	if again := AppendTraceMsgpack(nil, got); !bytes.Equal(again, body) {
		t.Errorf("re-encoding differs:\ngot  %x\nwant %x", again, body)
	}
}

func TestTraceMsgpackOptionalFields(t *testing.T) {
	want := &Trace{RootTLID: 7, TLIDs: []TLID{7}}
	got, err := DecodeTrace(AppendTraceMsgpack(nil, want), false, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
}

func compactJSON(t testing.TB, s []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, s); err != nil {
		t.Fatalf("%v: %s", err, s)
	}
	return b.String()
}

func TestTraceJSONRoundTrip(t *testing.T) {
	for _, doc := range []string{
		`{"traceID":"` + testTraceID + `","rootTLID":"1234","tlids":["1234","5678","18446744073709551615"],
		  "timestamp":"2026-11-22T03:48:01.123Z",
		  "input":[["request",{"body":"…","n":[0,1,-1,127,128,255,256,65535,65536,-32,-33,-128,-129,-32768,-32769,
		            4294967296,-2147483649,9223372036854775807,-9223372036854775808,18446744073709551615,
		            1.5,-0.25,1e+300,1e-7,123456789.125]}],["event",null]],
		  "functionResults":[{"tlid":"5678","exprID":"42","fnName":"HttpClient.get","hashVersion":0,"argHash":"a1b2",
		     "value":{"z":1,"a":[true,false,null,{},[]],"quote\"d":"tab\tnew\nline\\ \u0001 é 😀 \u2028"}}]}`,
		`{"rootTLID":"0","tlids":["0"],"input":[],"functionResults":[]}`,
	} {
		tr, err := DecodeTrace([]byte(doc), true, Limits{})
		if err != nil {
			t.Fatalf("DecodeTrace: %v", err)
		}
		out, err := AppendTraceJSON(nil, tr)
		if err != nil {
			t.Fatalf("AppendTraceJSON: %v", err)
		}
		if got, want := compactJSON(t, out), compactJSON(t, []byte(doc)); got != want {
			t.Errorf("JSON round trip:\ngot  %s\nwant %s", got, want)
		}
		// And through msgpack storage.
		tr2, err := DecodeTrace(AppendTraceMsgpack(nil, tr), false, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		out2, err := AppendTraceJSON(nil, tr2)
		if err != nil || !bytes.Equal(out2, out) {
			t.Errorf("via msgpack: got %s, %v, want %s", out2, err, out)
		}
	}
}

func TestDecodeTraceNormalizes(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want *Trace
	}{
		{"root added", `{"rootTLID":3,"tlids":[1,2]}`, &Trace{RootTLID: 3, TLIDs: []TLID{1, 2, 3}}},
		{"deduped", `{"rootTLID":"2","tlids":["1","2","1",2,3,1]}`, &Trace{RootTLID: 2, TLIDs: []TLID{1, 2, 3}}},
		{"numbers and strings", `{"rootTLID":18446744073709551615,"functionResults":[{"tlid":1,"exprID":2,"fnName":"f","value":0}]}`,
			&Trace{RootTLID: 18446744073709551615, TLIDs: []TLID{18446744073709551615},
				FunctionResults: []FunctionResult{{TLID: 1, ExprID: 2, FnName: "f", Value: Value{0}}}}},
		{"null is absent", `{"rootTLID":"1","traceID":null,"timestamp":null}`, &Trace{RootTLID: 1, TLIDs: []TLID{1}}},
		{"timestamp offset", `{"rootTLID":"1","timestamp":"2026-11-22T05:48:01.5+02:00"}`,
			&Trace{RootTLID: 1, TLIDs: []TLID{1}, Timestamp: time.Date(2026, 11, 22, 3, 48, 1, 5e8, time.UTC)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeTrace([]byte(tc.body), true, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeTraceErrors(t *testing.T) {
	deepJSON := strings.Repeat("[", 10_000) + strings.Repeat("]", 10_000)
	deepMsgpack := append(bytes.Repeat([]byte{0x91}, 10_000), 0xc0)
	fr := func(kv ...any) obj { return append(obj{"tlid", 1, "exprID", 2, "fnName", "f", "value", nil}, kv...) }
	for _, tc := range []struct {
		name  string
		body  any // string: JSON; []byte: msgpack
		lim   Limits
		want  string // the error text: "field: reason"
		limit int64
	}{
		{"missing rootTLID", `{"tlids":["1"]}`, Limits{}, "rootTLID: required", 0},
		{"missing rootTLID msgpack", enc(obj{"tlids", []any{1}}), Limits{}, "rootTLID: required", 0},
		{"bad traceID", `{"rootTLID":"1","traceID":"nope"}`, Limits{}, "traceID: must be a UUID in canonical lowercase 8-4-4-4-12 form", 0},
		{"uppercase traceID", `{"rootTLID":"1","traceID":"` + strings.ToUpper(testTraceID) + `"}`, Limits{}, "traceID: must be a UUID in canonical lowercase 8-4-4-4-12 form", 0},
		{"v4 traceID", `{"rootTLID":"1","traceID":"0190c3f2-8a4b-4c3d-9e1f-123456789abc"}`, Limits{}, "traceID: must be a version-7 UUID (RFC 9562)", 0},
		{"traceID number", `{"rootTLID":"1","traceID":7}`, Limits{}, "traceID: must be a string, not integer", 0},
		{"rootTLID float", `{"rootTLID":1.5}`, Limits{}, "rootTLID: must be an unsigned 64-bit integer or its decimal string, not float", 0},
		{"rootTLID negative", `{"rootTLID":-1}`, Limits{}, "rootTLID: must not be negative", 0},
		{"rootTLID leading zero", `{"rootTLID":"01"}`, Limits{}, "rootTLID: must be an unsigned 64-bit integer in decimal", 0},
		{"rootTLID too big", `{"rootTLID":"18446744073709551616"}`, Limits{}, "rootTLID: must be an unsigned 64-bit integer in decimal", 0},
		{"rootTLID object", `{"rootTLID":{}}`, Limits{}, "rootTLID: must be an unsigned 64-bit integer or its decimal string, not map", 0},
		{"duplicate key JSON", `{"rootTLID":"1","rootTLID":"2"}`, Limits{}, "rootTLID: duplicate key", 0},
		{"duplicate key msgpack", enc(obj{"rootTLID", 1, "rootTLID", 2}), Limits{}, "rootTLID: duplicate key", 0},
		{"tlids element", `{"rootTLID":"1","tlids":["1","x"]}`, Limits{}, "tlids[1]: must be an unsigned 64-bit integer in decimal", 0},
		{"tlids not array", `{"rootTLID":"1","tlids":"1"}`, Limits{}, "tlids: must be an array, not string", 0},
		{"too many tlids", `{"rootTLID":"1","tlids":[1,2,3]}`, Limits{MaxTLIDs: 2}, "tlids: exceeds the limit of 2", 2},
		{"too many results", enc(obj{"rootTLID", 1, "functionResults", []any{fr(), fr()}}), Limits{MaxFunctionResults: 1}, "functionResults: exceeds the limit of 1", 1},
		{"too many toplevels through results", enc(obj{"rootTLID", 9, "tlids", []any{1}, "functionResults", []any{fr(), obj{"tlid", 2, "exprID", 2, "fnName", "f", "value", nil}, obj{"tlid", 3, "exprID", 2, "fnName", "f", "value", nil}}}), Limits{MaxTLIDs: 2},
			"tlids: the toplevels the trace touches (tlids and the functionResults' tlids) exceed the limit of 2", 2},
		{"timestamp bad", `{"rootTLID":"1","timestamp":"yesterday"}`, Limits{}, "timestamp: must be an RFC 3339 time", 0},
		{"timestamp number", `{"rootTLID":"1","timestamp":5}`, Limits{}, "timestamp: must be a timestamp or an RFC 3339 string, not integer", 0},
		{"input not pairs", `{"rootTLID":"1","input":[["a",1],["b"]]}`, Limits{}, "input[1]: must be a [name, value] pair, not 1 elements", 0},
		{"input name", `{"rootTLID":"1","input":[[1,1]]}`, Limits{}, "input[0][0]: must be a string, not integer", 0},
		{"result not map", `{"rootTLID":"1","functionResults":[[]]}`, Limits{}, "functionResults[0]: must be a map, not array", 0},
		{"result missing value", `{"rootTLID":"1","functionResults":[{"tlid":"1","exprID":"2","fnName":"f"}]}`, Limits{}, "functionResults[0].value: required", 0},
		{"result missing tlid", `{"rootTLID":"1","functionResults":[{"exprID":"2","fnName":"f","value":1}]}`, Limits{}, "functionResults[0].tlid: required", 0},
		{"result bad exprID", enc(obj{"rootTLID", 1, "functionResults", []any{fr(), fr("exprID", "x")}}), Limits{}, "functionResults[1].exprID: duplicate key", 0},
		{"result exprID type", `{"rootTLID":"1","functionResults":[{"tlid":"1","exprID":true,"fnName":"f","value":1}]}`, Limits{}, "functionResults[0].exprID: must be an unsigned 64-bit integer or its decimal string, not bool", 0},
		{"result hashVersion", `{"rootTLID":"1","functionResults":[{"tlid":"1","exprID":"2","fnName":"f","hashVersion":"0","value":1}]}`, Limits{}, "functionResults[0].hashVersion: must be an integer, not string", 0},
		{"result key type", enc(obj{"rootTLID", 1, "functionResults", []any{obj{1, 2}}}), Limits{}, "functionResults[0]: keys must be strings, not integer", 0},
		{"value too deep msgpack", enc(obj{"rootTLID", 1, "functionResults", []any{fr(), obj{"tlid", 1, "exprID", 2, "fnName", "f", "value", raw(deepMsgpack)}}}), Limits{}, "functionResults[1].value: nesting deeper than 128", 128},
		{"value too deep JSON", `{"rootTLID":"1","functionResults":[{"tlid":"1","exprID":"2","fnName":"f","value":1},{"tlid":"1","exprID":"2","fnName":"f","value":` + deepJSON + `}]}`, Limits{}, "functionResults[1].value: nesting deeper than 128", 128},
		{"value 129 deep JSON", `{"rootTLID":"1","functionResults":[{"tlid":"1","exprID":"2","fnName":"f","value":` + strings.Repeat("[", 129) + strings.Repeat("]", 129) + `}]}`, Limits{}, "functionResults[0].value: nesting deeper than 128", 128},
		{"input too deep JSON", `{"rootTLID":"1","input":[["x",` + deepJSON + `]]}`, Limits{}, "input[0][1]: nesting deeper than 128", 128},
		{"unknown key too deep", `{"rootTLID":"1","x":` + strings.Repeat("[", 129) + strings.Repeat("]", 129) + `}`, Limits{SkipUnknown: true}, "x: nesting deeper than 128", 128},
		{"document too deep", deepJSON, Limits{}, "[0][0][0]: nesting deeper than 128", 128},
		{"JSON syntax", `{"rootTLID":"1",}`, Limits{}, `body: invalid JSON: unexpected '}' at offset 16`, 0},
		{"JSON syntax in value", `{"rootTLID":"1","input":[["x",{"a":tru}]]}`, Limits{}, `input[0][1]: invalid JSON: unexpected 't' at offset 35`, 0},
		{"JSON trailing", `{"rootTLID":"1"} {}`, Limits{}, "body: invalid JSON: data after the value at offset 17", 0},
		{"JSON empty", ``, Limits{}, "body: invalid JSON: unexpected end of input", 0},
		{"msgpack empty", []byte{}, Limits{}, "body: empty", 0},
		{"msgpack trailing", append(enc(obj{"rootTLID", 1}), 0xc0), Limits{}, "body: trailing data after the document", 0},
		{"body too large", `{"rootTLID":"1"}`, Limits{MaxBody: 10}, "body: exceeds the limit of 10", 10},
		{"not a map", enc([]any{}), Limits{}, "body: must be a map, not array", 0},
		{"declared 2^32 results", append(enc(obj{"rootTLID", 1}), 0), Limits{}, "body: trailing data after the document", 0},
		{"declared 2^32 array", append(enc(raw{0x82}, "rootTLID", 1, "input", raw{0xdd, 0xff, 0xff, 0xff, 0xff}), 0, 0), Limits{}, "input: declared 4294967295 elements exceed the 2 bytes that remain", 0},
		{"declared 2^32 map", append(enc(raw{0x82}, "rootTLID", 1, "input", []any{[]any{"a", raw{0xdf, 0xff, 0xff, 0xff, 0xff}}}), 0, 0), Limits{}, "input[0][1]: declared 4294967295 elements exceed the 2 bytes that remain", 0},
		{"declared 2^32 str", append(enc(raw{0x82}, "rootTLID", 1, "x", raw{0xdb, 0xff, 0xff, 0xff, 0xff}), 0, 0), Limits{SkipUnknown: true}, "x: declared length 4294967295 exceeds the 2 bytes that remain", 0},
		{"declared 2^32 results", append(enc(raw{0x82}, "rootTLID", 1, "functionResults", raw{0xdd, 0xff, 0xff, 0xff, 0xff}), 0), Limits{}, "functionResults: declared 4294967295 elements exceed the 1 bytes that remain", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body []byte
			isJSON := false
			switch b := tc.body.(type) {
			case string:
				body, isJSON = []byte(b), true
			case []byte:
				body = b
			}
			start := time.Now()
			got, err := DecodeTrace(body, isJSON, tc.lim)
			if err == nil {
				t.Fatalf("got %+v, want error %q", got, tc.want)
			}
			fe := fieldOf(t, err)
			if err.Error() != tc.want || fe.Limit != tc.limit {
				t.Errorf("got %q (limit %d), want %q (limit %d)", err, fe.Limit, tc.want, tc.limit)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

// TestDecodeTraceTouchedLimit: the tlids a trace touches through its
// function results count against MaxTLIDs with its tlids (the root aside),
// each once; a stored trace is read whatever it touches.
func TestDecodeTraceTouchedLimit(t *testing.T) {
	res := func(tlid int) obj { return obj{"tlid", tlid, "exprID", 1, "fnName", "f", "value", nil} }
	atLimit := enc(obj{"rootTLID", 9, "tlids", []any{1}, "functionResults", []any{res(1), res(2), res(2), res(1)}})
	tr, err := DecodeTrace(atLimit, false, Limits{MaxTLIDs: 2})
	if err != nil {
		t.Fatalf("2 toplevels besides the root, limit 2: %v", err)
	}
	over := AppendTraceMsgpack(nil, &Trace{RootTLID: 9, TLIDs: tr.TLIDs, FunctionResults: append(tr.FunctionResults, FunctionResult{TLID: 3, ExprID: 1, FnName: "f"})})
	if _, err := DecodeTrace(over, false, Limits{MaxTLIDs: 2}); err == nil || fieldOf(t, err).Field != "tlids" {
		t.Errorf("3 toplevels besides the root, limit 2: %v, want an error naming tlids", err)
	}
	if _, err := DecodeStoredTrace(over, Limits{MaxTLIDs: 2}); err != nil {
		t.Errorf("stored trace over the limit: %v, want it read", err)
	}
}

// TestDecodeTraceTruncated cuts a valid body at every length: each prefix
// fails with a *FieldError and never panics.
func TestDecodeTraceTruncated(t *testing.T) {
	body := AppendTraceMsgpack(nil, richTrace(t))
	// Shrink the 70,000-byte string so the loop stays quick.
	tr := richTrace(t)
	tr.FunctionResults[2].Value = enc("short")
	body = AppendTraceMsgpack(nil, tr)
	for n := range len(body) {
		_, err := DecodeTrace(body[:n], false, Limits{})
		if err == nil {
			t.Fatalf("prefix %d of %d: got no error", n, len(body))
		}
		fieldOf(t, err)
	}
	jsonBody, err := AppendTraceJSON(nil, tr)
	if err != nil {
		t.Fatal(err)
	}
	for n := range len(jsonBody) {
		_, err := DecodeTrace(jsonBody[:n], true, Limits{})
		if err == nil {
			t.Fatalf("JSON prefix %d of %d: got no error", n, len(jsonBody))
		}
		fieldOf(t, err)
	}
}

func TestDecodeLayer(t *testing.T) {
	tlids, results, err := DecodeLayer([]byte(`{"tlids":["9","5"],"functionResults":[
		{"tlid":"5","exprID":"1","fnName":"f","argHash":"h","value":[1]},
		{"tlid":"7","exprID":"2","fnName":"g","value":null}]}`), true, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]TLID{9, 5, 7}, tlids); diff != "" {
		t.Errorf("tlids (-want +got):\n%s", diff)
	}
	want := []FunctionResult{
		{TLID: 5, ExprID: 1, FnName: "f", ArgHash: "h", Value: enc([]any{1})},
		{TLID: 7, ExprID: 2, FnName: "g", Value: enc(nil)},
	}
	if diff := cmp.Diff(want, results); diff != "" {
		t.Errorf("results (-want +got):\n%s", diff)
	}
	// The msgpack encoding reads back the same.
	tl2, res2, err := DecodeLayer(AppendLayerMsgpack(nil, tlids, results), false, Limits{})
	if err != nil || !cmp.Equal(tl2, tlids) || !cmp.Equal(res2, results) {
		t.Errorf("msgpack round trip: got %v %v %v", tl2, res2, err)
	}

	for _, tc := range []struct{ body, want string }{
		{`{"tlids":["1"]}`, "functionResults: required"},
		{`{"functionResults":[]}`, "functionResults: required"},
		{`{"functionResults":[{"tlid":"1","exprID":"1","fnName":"f","value":1}],"tlids":5}`, "tlids: must be an array, not integer"},
	} {
		_, _, err := DecodeLayer([]byte(tc.body), true, Limits{})
		if err == nil || err.Error() != tc.want {
			t.Errorf("DecodeLayer(%s): got %v, want %q", tc.body, err, tc.want)
		}
	}
	// The union of tlids is bounded too.
	_, _, err = DecodeLayer([]byte(`{"tlids":["1"],"functionResults":[{"tlid":"2","exprID":"1","fnName":"f","value":1}]}`), true, Limits{MaxTLIDs: 1})
	if err == nil || err.Error() != "tlids: exceeds the limit of 1" {
		t.Errorf("union over the limit: got %v", err)
	}
}

func TestDecodeUnmatched(t *testing.T) {
	got, err := DecodeUnmatched([]byte(`{"module":"HTTP","path":"/users/1","modifier":"GET","input":[["request",{"a":1}]]}`), true, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := Unmatched{Module: "HTTP", Path: "/users/1", Modifier: "GET", Input: []InputVar{{Name: "request", Value: enc(obj{"a", 1})}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("mismatch (-want +got):\n%s", diff)
	}
	back, err := DecodeUnmatched(AppendUnmatchedMsgpack(nil, got), false, Limits{})
	if err != nil || !cmp.Equal(back, want) {
		t.Errorf("msgpack round trip: got %+v, %v", back, err)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"path":"/"}`, "module: required"},
		{`{"module":"HTTP"}`, "path: required"},
		{`{"module":"","path":"/"}`, "module: required"},
		{`{"module":"HTTP","path":"` + strings.Repeat("a", 1025) + `"}`, "path: exceeds the limit of 1024"},
		{`{"module":"HTTP","path":"/","modifier":"` + strings.Repeat("a", 65) + `"}`, "modifier: exceeds the limit of 64"},
		{`{"module":"HT\u0000TP","path":"/"}`, "module: must be valid UTF-8 without NUL bytes"},
		{`{"module":"HTTP","path":"/","input":[[1]]}`, "input[0]: must be a [name, value] pair, not 1 elements"},
	} {
		_, err := DecodeUnmatched([]byte(tc.body), true, Limits{})
		if err == nil || err.Error() != tc.want {
			t.Errorf("DecodeUnmatched(%.40s): got %v, want %q", tc.body, err, tc.want)
		}
	}
}

func TestDecodeFields(t *testing.T) {
	var (
		tlids  []TLID
		limit  int64
		reason string
		root   TLID
	)
	fields := map[string]func(r *Reader, field string) error{
		"tlids":    func(r *Reader, f string) (err error) { tlids, err = r.TLIDs(f, 3); return err },
		"limit":    func(r *Reader, f string) (err error) { limit, err = r.Int(f); return err },
		"reason":   func(r *Reader, f string) (err error) { reason, err = r.String(f, 10); return err },
		"rootTLID": func(r *Reader, f string) (err error) { root, err = r.TLID(f); return err },
	}
	if err := DecodeFields([]byte(`{"tlids":["1",2,"1"],"limit":10,"other":[1],"reason":"why","rootTLID":"9"}`), true, Limits{SkipUnknown: true}, fields); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprintln(tlids, limit, reason, root); got != "[1 2] 10 why 9\n" {
		t.Errorf("got %s, want [1 2] 10 why 9", got)
	}
	for _, body := range []string{"", "  \n"} {
		if err := DecodeFields([]byte(body), true, Limits{}, fields); err != nil {
			t.Errorf("empty body %q: got %v, want nil", body, err)
		}
	}
	if err := DecodeFields(nil, false, Limits{}, fields); err != nil {
		t.Errorf("empty msgpack body: got %v, want nil", err)
	}
	if err := DecodeFields(enc(obj{"limit", 5}), false, Limits{}, fields); err != nil || limit != 5 {
		t.Errorf("msgpack: got %v, %d", err, limit)
	}
	lazy := map[string]func(r *Reader, field string) error{"x": func(r *Reader, f string) error { return nil }}
	for _, tc := range []struct {
		body   string
		fields map[string]func(r *Reader, field string) error
		want   string
	}{
		{`{"tlids":[1,2,3,4]}`, fields, "tlids: exceeds the limit of 4"[:0] + "tlids: exceeds the limit of 3"},
		{`{"tlids":["a"]}`, fields, "tlids[0]: must be an unsigned 64-bit integer in decimal"},
		{`{"limit":"10"}`, fields, "limit: must be an integer, not string"},
		{`{"reason":"much too long"}`, fields, "reason: exceeds the limit of 10"},
		{`{"limit":1,"limit":2}`, fields, "limit: duplicate key"},
		{`[]`, fields, "body: must be a map, not array"},
		{`{"x":[1]}`, lazy, "x: has an unexpected form"},
	} {
		err := DecodeFields([]byte(tc.body), true, Limits{}, tc.fields)
		if err == nil || err.Error() != tc.want {
			t.Errorf("DecodeFields(%s): got %v, want %q", tc.body, err, tc.want)
		}
	}
}

func TestAppendTraceJSONBadValue(t *testing.T) {
	tr := &Trace{RootTLID: 1, TLIDs: []TLID{1}, FunctionResults: []FunctionResult{{Value: enc(1)}, {Value: Value{0x92, 1, 0xcd}}}}
	_, err := AppendTraceJSON(nil, tr)
	if err == nil || err.Error() != "functionResults[1].value: truncated msgpack data" {
		t.Errorf("got %v, want functionResults[1].value: truncated msgpack data", err)
	}
}

func TestMergeLayers(t *testing.T) {
	r := func(tlid TLID, expr uint64, fn, arg string, v int) FunctionResult {
		return FunctionResult{TLID: tlid, ExprID: expr, FnName: fn, ArgHash: arg, Value: enc(v)}
	}
	base := &Trace{RootTLID: 1, TLIDs: []TLID{1, 2}, Input: []InputVar{{Name: "x", Value: enc(1)}},
		FunctionResults: []FunctionResult{r(2, 10, "f", "a", 1), r(2, 11, "g", "", 2), r(3, 12, "h", "", 3)}}
	for _, tc := range []struct {
		name      string
		layers    []Layer
		wantTLIDs []TLID
		want      []FunctionResult
	}{
		{"no layers", nil, []TLID{1, 2}, base.FunctionResults},
		{"replace in place", []Layer{{TLIDs: []TLID{2}, FunctionResults: []FunctionResult{r(2, 11, "g", "", 20)}}},
			[]TLID{1, 2}, []FunctionResult{r(2, 10, "f", "a", 1), r(2, 11, "g", "", 20), r(3, 12, "h", "", 3)}},
		{"other argHash appends", []Layer{{FunctionResults: []FunctionResult{r(2, 10, "f", "b", 4)}}},
			[]TLID{1, 2}, []FunctionResult{r(2, 10, "f", "a", 1), r(2, 11, "g", "", 2), r(3, 12, "h", "", 3), r(2, 10, "f", "b", 4)}},
		{"each key part matters", []Layer{{FunctionResults: []FunctionResult{r(9, 10, "f", "a", 5), r(2, 99, "f", "a", 6), r(2, 10, "F", "a", 7)}}},
			[]TLID{1, 2, 9}, []FunctionResult{r(2, 10, "f", "a", 1), r(2, 11, "g", "", 2), r(3, 12, "h", "", 3), r(9, 10, "f", "a", 5), r(2, 99, "f", "a", 6), r(2, 10, "F", "a", 7)}},
		{"later layer wins, new ones in layer order", []Layer{
			{TLIDs: []TLID{5}, FunctionResults: []FunctionResult{r(5, 1, "n", "", 8), r(2, 10, "f", "a", 9)}},
			{TLIDs: []TLID{6, 1}, FunctionResults: []FunctionResult{r(2, 10, "f", "a", 10), r(5, 1, "n", "", 11), r(6, 2, "m", "", 12)}},
		}, []TLID{1, 2, 5, 6}, []FunctionResult{r(2, 10, "f", "a", 10), r(2, 11, "g", "", 2), r(3, 12, "h", "", 3), r(5, 1, "n", "", 11), r(6, 2, "m", "", 12)}},
		{"within one layer the later wins", []Layer{{FunctionResults: []FunctionResult{r(3, 12, "h", "", 13), r(3, 12, "h", "", 14)}}},
			[]TLID{1, 2, 3}, []FunctionResult{r(2, 10, "f", "a", 1), r(2, 11, "g", "", 2), r(3, 12, "h", "", 14)}},
		{"tlids of results and empty layers", []Layer{{}, {FunctionResults: []FunctionResult{r(8, 1, "x", "", 15)}}, {TLIDs: []TLID{2, 9}}},
			[]TLID{1, 2, 8, 9}, []FunctionResult{r(2, 10, "f", "a", 1), r(2, 11, "g", "", 2), r(3, 12, "h", "", 3), r(8, 1, "x", "", 15)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := AppendTraceMsgpack(nil, base)
			got := MergeLayers(base, tc.layers)
			if diff := cmp.Diff(tc.want, got.FunctionResults); diff != "" {
				t.Errorf("results (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTLIDs, got.TLIDs); diff != "" {
				t.Errorf("tlids (-want +got):\n%s", diff)
			}
			if got.RootTLID != base.RootTLID || !cmp.Equal(got.Input, base.Input) {
				t.Errorf("got root %d input %v, want base's", got.RootTLID, got.Input)
			}
			if after := AppendTraceMsgpack(nil, base); !bytes.Equal(before, after) {
				t.Error("MergeLayers modified base")
			}
		})
	}

	// A result the base holds twice is replaced in both places.
	dup := &Trace{RootTLID: 1, FunctionResults: []FunctionResult{r(1, 1, "f", "", 1), r(1, 1, "f", "", 2)}}
	got := MergeLayers(dup, []Layer{{FunctionResults: []FunctionResult{r(1, 1, "f", "", 3)}}})
	if diff := cmp.Diff([]FunctionResult{r(1, 1, "f", "", 3), r(1, 1, "f", "", 3)}, got.FunctionResults); diff != "" {
		t.Errorf("duplicate base results (-want +got):\n%s", diff)
	}
}

// benchTrace builds a trace of about size bytes of msgpack.
func benchTrace(b testing.TB, size int) *Trace {
	tr := &Trace{ID: mustTraceID(b, testTraceID), RootTLID: 1, TLIDs: []TLID{1, 2, 3},
		Timestamp: time.Date(2026, 11, 22, 3, 48, 1, 123e6, time.UTC),
		Input:     []InputVar{{Name: "request", Value: enc(obj{"body", obj{"user", "ada", "id", 42}, "headers", obj{"accept", "application/json", "x-request-id", "abc123"}})}}}
	for i := 0; len(AppendTraceMsgpack(nil, tr)) < size; i++ {
		tr.FunctionResults = append(tr.FunctionResults, FunctionResult{
			TLID: TLID(2 + i%2), ExprID: uint64(1_000_000 + i), FnName: "HttpClient.get", HashVersion: 1, ArgHash: "a1b2c3d4",
			Value: enc(obj{"status", 200, "body", obj{"items", []any{1, 2.5, "three", true, nil}, "name", "item " + strconv.Itoa(i)}}),
		})
	}
	return tr
}

func BenchmarkDecodeTrace(b *testing.B) {
	for _, size := range []int{2 << 10, 16 << 10} {
		tr := benchTrace(b, size)
		mp := AppendTraceMsgpack(nil, tr)
		js, err := AppendTraceJSON(nil, tr)
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range []struct {
			name   string
			body   []byte
			isJSON bool
		}{{"msgpack", mp, false}, {"json", js, true}} {
			b.Run(fmt.Sprintf("%s/size=%dKiB", f.name, size>>10), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(f.body)))
				for b.Loop() {
					if _, err := DecodeTrace(f.body, f.isJSON, Limits{}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

func BenchmarkAppendTraceJSON(b *testing.B) {
	for _, size := range []int{2 << 10, 16 << 10} {
		tr := benchTrace(b, size)
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			buf := make([]byte, 0, 4*size)
			for b.Loop() {
				out, err := AppendTraceJSON(buf[:0], tr)
				if err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(len(out)))
			}
		})
	}
}

func BenchmarkAppendTraceMsgpack(b *testing.B) {
	tr := benchTrace(b, 16<<10)
	b.ReportAllocs()
	buf := make([]byte, 0, 32<<10)
	for b.Loop() {
		buf = AppendTraceMsgpack(buf[:0], tr)
	}
	b.SetBytes(int64(len(buf)))
}

func BenchmarkMergeLayers(b *testing.B) {
	const results = 1000
	base := benchTrace(b, 0)
	for i := range results {
		base.FunctionResults = append(base.FunctionResults, FunctionResult{TLID: TLID(i % 50), ExprID: uint64(i), FnName: "f", ArgHash: "h", Value: enc(i)})
	}
	var layers []Layer
	for l := range 3 {
		var rs []FunctionResult
		for i := l; i < results; i += 7 { // replaces some, adds some
			rs = append(rs, FunctionResult{TLID: TLID(i % 50), ExprID: uint64(i + l*results/2), FnName: "f", ArgHash: "h", Value: enc(-i)})
		}
		layers = append(layers, Layer{TLIDs: []TLID{TLID(l)}, FunctionResults: rs})
	}
	b.Run(fmt.Sprintf("results=%d", results), func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			MergeLayers(base, layers)
		}
	})
}

// A top-level key a document does not define is refused, naming it, in
// JSON and msgpack alike (a misspelt "functionResults" must not drop the
// results); with SkipUnknown (stored objects, responses) it is skipped.
// Keys inside a function result are skipped either way.
func TestDecodeUnknownFields(t *testing.T) {
	result := obj{"tlid", 1, "exprID", 2, "fnName", "f", "value", 1}
	fields := map[string]func(r *Reader, field string) error{
		"reason": func(r *Reader, f string) error { _, err := r.String(f, 10); return err },
	}
	decoders := map[string]func(body []byte, isJSON bool, lim Limits) error{
		"trace": func(b []byte, j bool, lim Limits) error { _, err := DecodeTrace(b, j, lim); return err },
		"layer": func(b []byte, j bool, lim Limits) error { _, _, err := DecodeLayer(b, j, lim); return err },
		"unmatched": func(b []byte, j bool, lim Limits) error {
			_, err := DecodeUnmatched(b, j, lim)
			return err
		},
		"fields": func(b []byte, j bool, lim Limits) error { return DecodeFields(b, j, lim, fields) },
	}
	for _, tc := range []struct {
		decoder string
		doc     obj // a valid document; the test adds a misspelt key to it
		typo    string
		known   string
	}{
		{"trace", obj{"rootTLID", 1}, "functionResult", "traceID, rootTLID, tlids, timestamp, input, functionResults"},
		{"trace", obj{"rootTLID", 1, "functionResults", []any{append(obj{"future", 1}, result...)}}, "tlid", "traceID, rootTLID, tlids, timestamp, input, functionResults"},
		{"layer", obj{"functionResults", []any{result}}, "tlid", "tlids, functionResults"},
		{"unmatched", obj{"module", "HTTP", "path", "/"}, "modifer", "module, path, modifier, input"},
		{"fields", obj{"reason", "why"}, "until", "reason"},
	} {
		decode := decoders[tc.decoder]
		good := enc(tc.doc)
		bad := enc(append(obj{tc.typo, []any{"x"}}, tc.doc...))
		t.Run(tc.decoder+"/"+tc.typo, func(t *testing.T) {
			for _, isJSON := range []bool{false, true} {
				good, bad := good, bad
				if isJSON {
					good, bad = mustJSON(t, good), mustJSON(t, bad)
				}
				if err := decode(good, isJSON, Limits{}); err != nil {
					t.Fatalf("json=%v: the valid document: %v", isJSON, err)
				}
				err := decode(bad, isJSON, Limits{})
				want := tc.typo + ": unknown field (the fields are " + tc.known + ")"
				if err == nil || err.Error() != want || !errors.Is(err, ErrInvalid) {
					t.Errorf("json=%v: got %v, want %q", isJSON, err, want)
				}
				if err := decode(bad, isJSON, Limits{SkipUnknown: true}); err != nil {
					t.Errorf("json=%v, SkipUnknown: got %v, want the key skipped", isJSON, err)
				}
			}
		})
	}
}

// mustJSON renders a msgpack document as JSON by the package's mapping.
func mustJSON(t *testing.T, mp []byte) []byte {
	t.Helper()
	b, err := AppendJSON(nil, Value(mp))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDecodeInvalidUTF8 checks which strings of a msgpack request body must
// be valid UTF-8: every str, at any depth of a value, map keys included, and
// the document's own keys; bin and extension payloads are bytes and pass.
// Objects read back from storage are not checked.
func TestDecodeInvalidUTF8(t *testing.T) {
	bad := "a\xffb"
	doc := func(input any, results ...any) []byte {
		return enc(obj{"rootTLID", 1, "input", []any{[]any{"request", input}}, "functionResults", results})
	}
	result := func(v any) obj {
		return obj{"tlid", 1, "exprID", 1, "fnName", "f", "argHash", "h", "value", v}
	}
	for _, tc := range []struct {
		name  string
		body  []byte
		field string // "": accepted
	}{
		{"input value", doc(bad), "input[0][1]"},
		{"deep in an input value", doc(obj{"a", []any{1, obj{"b", bad}}}), "input[0][1]"},
		{"map key in a value", doc(obj{bad, 1}), "input[0][1]"},
		{"result value", doc(nil, result(obj{"ok", []any{bad}})), "functionResults[0].value"},
		{"input name", enc(obj{"rootTLID", 1, "input", []any{[]any{bad, 1}}}), "input[0][0]"},
		{"fnName", doc(nil, obj{"tlid", 1, "exprID", 1, "fnName", bad, "value", 1}), "functionResults[0].fnName"},
		{"unknown document key", enc(obj{"rootTLID", 1, bad, 1}), "body"},
		{"unknown key's value", enc(obj{"rootTLID", 1, "extra", bad}), "extra"},
		{"bin with any bytes", doc(bin(bad)), ""},
		{"extension with any bytes", doc(ext{typ: 7, data: []byte(bad)}), ""},
		{"valid UTF-8 everywhere", doc(obj{"héllo", "wörld 😀"}, result("ü")), ""},
	} {
		_, err := DecodeTrace(tc.body, false, Limits{SkipUnknown: true})
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: %v, want it accepted", tc.name, err)
		case tc.field != "" && err == nil:
			t.Errorf("%s: accepted, want an error naming %s", tc.name, tc.field)
		case tc.field != "":
			if fe := fieldOf(t, err); fe.Field != tc.field || !strings.Contains(fe.Reason, "UTF-8") {
				t.Errorf("%s: %v, want field %s and a reason about UTF-8", tc.name, err, tc.field)
			}
		}
	}
	if _, err := DecodeUnmatched(enc(obj{"module", "HTTP", "path", "/", "input", []any{[]any{"b", bad}}}), false, Limits{}); err == nil {
		t.Errorf("unmatched request with invalid UTF-8 in its input: accepted")
	}
	if _, _, err := DecodeLayer(enc(obj{"functionResults", []any{result(bad)}}), false, Limits{}); err == nil {
		t.Errorf("layer with invalid UTF-8 in a value: accepted")
	}
	// An object stored before the check still reads back, byte for byte.
	stored := doc(bad)
	tr, err := DecodeStoredTrace(stored, Limits{})
	if err != nil || !bytes.Equal(tr.Input[0].Value, enc(bad)) {
		t.Errorf("stored trace with invalid UTF-8: %v, %x; want it read as stored", err, tr)
	}
	layer := AppendStoredLayer(nil, 7, []TLID{1}, []FunctionResult{{TLID: 1, ExprID: 1, FnName: "f", Value: enc(bad)}})
	if l, base, err := DecodeStoredLayer(layer, Limits{}); err != nil || base != 7 || !bytes.Equal(l.FunctionResults[0].Value, enc(bad)) {
		t.Errorf("stored layer with invalid UTF-8: %v", err)
	}
	if _, err := DecodeStoredUnmatched(enc(obj{"module", "HTTP", "path", "/", "input", []any{[]any{"b", bad}}}), Limits{}); err != nil {
		t.Errorf("stored unmatched request with invalid UTF-8: %v", err)
	}
}
