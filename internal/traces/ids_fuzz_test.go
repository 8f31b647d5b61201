package traces

import (
	"errors"
	"testing"
)

// FuzzParseIDs checks the path parameter parsers (canvasID, traceID, tlid):
// they never panic, every rejection is a *FieldError naming the field, and
// everything accepted is canonical (renders back to the exact input), so no
// two spellings ever reach storage or SQL as the same ID. The seed corpus
// lives in testdata/fuzz/FuzzParseIDs.
func FuzzParseIDs(f *testing.F) {
	f.Add("0e3f5a1c-1234-7abc-8def-0123456789ab")
	f.Add("7d3f5a1c-0000-4000-8000-000000000001")
	f.Add("18446744073709551615")
	f.Fuzz(func(t *testing.T, s string) {
		check := func(field string, err error, back string) {
			if err != nil {
				var fe *FieldError
				if !errors.As(err, &fe) || !errors.Is(err, ErrInvalid) || fe.Field != field {
					t.Fatalf("%s %q: error %v (%T), want a *FieldError for %s", field, s, err, err, field)
				}
				return
			}
			if back != s {
				t.Fatalf("%s %q accepted but renders as %q", field, s, back)
			}
		}
		c, err := ParseCanvasID(s)
		check("canvasID", err, c.String())
		id, err := ParseTraceID(s)
		check("traceID", err, id.String())
		if err == nil && UUID(id).Version() != 7 {
			t.Fatalf("traceID %q accepted with version %d", s, UUID(id).Version())
		}
		tl, err := ParseTLID("tlid", s)
		check("tlid", err, tl.String())
	})
}
