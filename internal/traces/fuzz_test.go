package traces

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/, so plain go test
// runs them as regression tests; f.Add adds the generated seeds below.

// smallRichTrace is richTrace without its 70,000-byte string, which slows
// the mutator down.
func smallRichTrace(f *testing.F) *Trace {
	tr := richTrace(f)
	tr.FunctionResults[2].Value = enc("short")
	return tr
}

func fuzzLimits() Limits { return Limits{MaxTLIDs: 100, MaxFunctionResults: 100, MaxDepth: 16} }

// checkFieldError fails unless err is a *FieldError wrapping ErrInvalid
// that names a field.
func checkFieldError(t *testing.T, err error) {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || fe.Field == "" {
		t.Fatalf("got error %v (%T), want a *FieldError naming a field", err, err)
	}
}

func FuzzDecodeTraceMsgpack(f *testing.F) {
	f.Add(AppendTraceMsgpack(nil, smallRichTrace(f)))
	f.Add(AppendTraceMsgpack(nil, &Trace{RootTLID: 1}))
	f.Fuzz(func(t *testing.T, body []byte) {
		tr, err := DecodeTrace(body, false, fuzzLimits())
		if err != nil {
			checkFieldError(t, err)
			return
		}
		// Whatever decodes re-encodes to a document that decodes the same,
		// and renders as valid JSON.
		again, err := DecodeTrace(AppendTraceMsgpack(nil, tr), false, fuzzLimits())
		if err != nil {
			t.Fatalf("re-decoding: %v", err)
		}
		if diff := cmp.Diff(tr, again, cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("re-decoding differs (-first +again):\n%s", diff)
		}
		js, err := AppendTraceJSON(nil, tr)
		if err != nil {
			t.Fatalf("AppendTraceJSON: %v", err)
		}
		if !json.Valid(js) {
			t.Fatalf("AppendTraceJSON is not valid JSON: %s", js)
		}
	})
}

func FuzzDecodeTraceJSON(f *testing.F) {
	f.Add([]byte(`{"rootTLID":"1"}`))
	if js, err := AppendTraceJSON(nil, smallRichTrace(f)); err == nil {
		f.Add(js)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		tr, err := DecodeTrace(body, true, fuzzLimits())
		if err != nil {
			checkFieldError(t, err)
			return
		}
		// The JSON it renders is a fixed point: it decodes to a trace that
		// renders the same text.
		js, err := AppendTraceJSON(nil, tr)
		if err != nil {
			t.Fatalf("AppendTraceJSON: %v", err)
		}
		tr2, err := DecodeTrace(js, true, fuzzLimits())
		if err != nil {
			t.Fatalf("decoding own JSON %s: %v", js, err)
		}
		js2, err := AppendTraceJSON(nil, tr2)
		if err != nil || !bytes.Equal(js, js2) {
			t.Fatalf("JSON not stable:\n%s\n%s (%v)", js, js2, err)
		}
	})
}

func FuzzJSONToMsgpack(f *testing.F) {
	for _, s := range []string{`null`, `[1,-1,1.5,"x",{"a":[]}]`, `{"a":1,"a":2}`, `"\ud83d\ude00\ud800"`, `18446744073709551616`, `-0`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := fuzzLimits()
		mp, err := JSONToMsgpack(nil, data, lim)
		if err != nil {
			checkFieldError(t, err)
			if json.Valid(data) {
				// Valid JSON is refused only for what the mapping refuses.
				msg := err.Error()
				if !strings.Contains(msg, "nesting deeper") && !strings.Contains(msg, "duplicate key") && !strings.Contains(msg, "out of range") &&
					!strings.Contains(msg, "invalid UTF-8") && !strings.Contains(msg, "lone surrogate") {
					t.Fatalf("valid JSON %q refused: %v", data, err)
				}
			}
			return
		}
		if !json.Valid(data) && utf8ValidJSONText(data) {
			t.Fatalf("invalid JSON %q accepted", data)
		}
		r := NewReader(mp, lim)
		if err := r.Skip("value"); err != nil || r.Remaining() != 0 {
			t.Fatalf("output %x is not one msgpack value: %v", mp, err)
		}
		js, err := AppendJSON(nil, mp)
		if err != nil || !json.Valid(js) {
			t.Fatalf("AppendJSON(%x) = %s, %v", mp, js, err)
		}
		mp2, err := JSONToMsgpack(nil, js, lim)
		if err != nil {
			t.Fatalf("own JSON %s refused: %v", js, err)
		}
		js2, err := AppendJSON(nil, mp2)
		if err != nil || !bytes.Equal(js, js2) {
			t.Fatalf("JSON not stable:\n%s\n%s (%v)", js, js2, err)
		}
	})
}

// utf8ValidJSONText reports whether data is valid UTF-8: encoding/json's
// Valid checks only the grammar, and the mapping refuses invalid UTF-8 in
// strings, so the two are compared on valid UTF-8 only.
func utf8ValidJSONText(data []byte) bool { return bytes.Equal(bytes.ToValidUTF8(data, nil), data) }

func FuzzParseKey(f *testing.F) {
	c, tr := "3f2504e0-4f89-11d3-9a0c-0305e82c3301", testTraceID
	for _, s := range []string{c + "/traces/" + tr, c + "/layers/" + tr + "/000001", c + "/404s/" + tr, tr, c, "", "/", c + "/layers/" + tr + "/+00001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if id, err := ParseTraceID(s); err == nil && id.String() != s {
			t.Fatalf("ParseTraceID(%q) renders as %q", s, id)
		}
		if id, err := ParseCanvasID(s); err == nil && id.String() != s {
			t.Fatalf("ParseCanvasID(%q) renders as %q", s, id)
		}
		k, err := ParseKey(s)
		if err != nil {
			checkFieldError(t, err)
			return
		}
		var back string
		switch k.Kind {
		case KindTrace:
			back = TraceKey(k.Canvas, k.Trace)
		case KindLayer:
			back = LayerKey(k.Canvas, k.Trace, k.Layer)
		case KindUnmatched:
			back = UnmatchedKey(k.Canvas, k.Trace)
		default:
			t.Fatalf("ParseKey(%q) = kind %d without error", s, k.Kind)
		}
		if back != s {
			t.Fatalf("ParseKey(%q) renders as %q", s, back)
		}
	})
}
