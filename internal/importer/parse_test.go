package importer

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/internal/traces"
)

const (
	testCanvas = "7d3f5a1c-0000-4000-8000-000000000001"
	testTrace  = "019a9a1e-8a2b-7000-8000-000000000001"
)

func TestParseLine(t *testing.T) {
	t.Parallel()
	line := `{"traceID":"` + testTrace + `","canvasID":"` + testCanvas + `","rootTLID":"1234","tlids":["5678"],` +
		`"timestamp":"2025-11-22T03:48:01.123Z","input":[["request",{"body":"hi"}]],` +
		`"functionResults":[{"tlid":"5678","exprID":"42","fnName":"HttpClient.get","hashVersion":0,"argHash":"a1b2","value":[1,"x"]}]}`
	canvas, tr, err := ParseLine([]byte(line), traces.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	want := &client.Trace{
		ID: testTrace, RootTLID: 1234, TLIDs: []client.TLID{5678, 1234},
		Timestamp: time.Date(2025, 11, 22, 3, 48, 1, 123e6, time.UTC),
		Input:     []client.InputVar{{Name: "request", Value: client.MustValue(map[string]any{"body": "hi"})}},
		FunctionResults: []client.FunctionResult{{TLID: 5678, ExprID: 42, FnName: "HttpClient.get", ArgHash: "a1b2",
			Value: client.Value{0x92, 0x01, 0xa1, 0x78}}},
	}
	if canvas != testCanvas {
		t.Errorf("canvas = %q, want %q", canvas, testCanvas)
	}
	if d := cmp.Diff(want, tr); d != "" {
		t.Errorf("trace (-want +got):\n%s", d)
	}
}

func TestParseLineRefuses(t *testing.T) {
	t.Parallel()
	ok := `"traceID":"` + testTrace + `","canvasID":"` + testCanvas + `","rootTLID":"1"`
	for _, tc := range []struct {
		name, line, field string
		lim               traces.Limits
	}{
		{"not JSON", `{"traceID":`, "", traces.Limits{}},
		{"not an object", `[1,2]`, "body", traces.Limits{}},
		{"no canvasID", `{"traceID":"` + testTrace + `","rootTLID":"1"}`, "canvasID", traces.Limits{}},
		{"canvasID twice", `{` + ok + `,"canvasID":"` + testCanvas + `"}`, "canvasID", traces.Limits{}},
		{"canvasID not a UUID", `{"canvasID":"c1","traceID":"` + testTrace + `","rootTLID":"1"}`, "canvasID", traces.Limits{}},
		{"no traceID", `{"canvasID":"` + testCanvas + `","rootTLID":"1"}`, "traceID", traces.Limits{}},
		{"no rootTLID", `{"canvasID":"` + testCanvas + `","traceID":"` + testTrace + `"}`, "rootTLID", traces.Limits{}},
		{"an unknown field", `{` + ok + `,"rootTlid":"2"}`, "rootTlid", traces.Limits{}},
		{"a tlid out of range", `{` + ok + `,"tlids":["18446744073709551616"]}`, "tlids[0]", traces.Limits{}},
		{"over the body limit", `{` + ok + `,"input":[["a","` + strings.Repeat("x", 200) + `"]]}`, "body", traces.Limits{MaxBody: 100}},
		{"too deep", `{` + ok + `,"input":[["a",[[[[1]]]]]]}`, "", traces.Limits{MaxDepth: 2}},
	} {
		_, _, err := ParseLine([]byte(tc.line), tc.lim)
		var fe *traces.FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: err = %v, want a field error", tc.name, err)
			continue
		}
		if tc.field != "" && fe.Field != tc.field {
			t.Errorf("%s: field = %q (%v), want %q", tc.name, fe.Field, err, tc.field)
		}
	}
}

func TestLineReader(t *testing.T) {
	t.Parallel()
	in := "one\r\ntwo\n\n" + strings.Repeat("x", 40) + "\nlast"
	lr := newLineReader(strings.NewReader(in), 10)
	type got struct {
		Line    string
		TooLong bool
		Offset  int64
	}
	var lines []got
	for {
		b, long, err := lr.next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		lines = append(lines, got{string(b), long, lr.offset})
	}
	want := []got{{"one", false, 5}, {"two", false, 9}, {"", false, 10}, {"", true, 51}, {"last", false, 55}}
	if d := cmp.Diff(want, lines); d != "" {
		t.Errorf("lines (-want +got):\n%s", d)
	}
}
