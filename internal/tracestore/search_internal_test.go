package tracestore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

func mustID(t *testing.T, s string) traces.TraceID {
	t.Helper()
	var id traces.TraceID
	h := strings.ReplaceAll(s, "-", "")
	for i := range id {
		hi, _ := hexDigit(h[2*i])
		lo, _ := hexDigit(h[2*i+1])
		id[i] = hi<<4 | lo
	}
	return id
}

// TestSearchRange: each filter narrows one range of trace IDs; the time
// range is [since, until) on the IDs' embedded milliseconds.
func TestSearchRange(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 22, 3, 48, 1, 123_456_789, time.UTC) // 0x01a2015e35e3 ms
	tlid := traces.TLID(7)
	cur := mustID(t, "01a2015e-35e3-7000-8000-000000000005")
	// A range whose Low is above its High is empty: the index answers it
	// without a query.
	for _, tc := range []struct {
		name      string
		q         SearchQuery
		low, high string
		limit     int
	}{
		{"everything", SearchQuery{}, "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", 50},
		{"since", SearchQuery{Since: at, Limit: 7}, "01a2015e-35e3-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", 7},
		{"until", SearchQuery{Until: at, TLID: &tlid}, "00000000-0000-0000-0000-000000000000", "01a2015e-35e2-ffff-ffff-ffffffffffff", 50},
		{"one millisecond", SearchQuery{Since: at, Until: at.Add(time.Millisecond)}, "01a2015e-35e3-0000-0000-000000000000", "01a2015e-35e3-ffff-ffff-ffffffffffff", 50},
		{"prefix", SearchQuery{Prefix: "01A2-015"}, "01a20150-0000-0000-0000-000000000000", "01a2015f-ffff-ffff-ffff-ffffffffffff", 50},
		{"prefix and since", SearchQuery{Prefix: "01a2015", Since: at}, "01a2015e-35e3-0000-0000-000000000000", "01a2015f-ffff-ffff-ffff-ffffffffffff", 50},
		{"whole ID as prefix", SearchQuery{Prefix: "01a2015e-35e3-7000-8000-000000000005"}, "01a2015e-35e3-7000-8000-000000000005", "01a2015e-35e3-7000-8000-000000000005", 50},
		{"cursor", SearchQuery{Cursor: encodeCursor(cur), Limit: 1000}, "00000000-0000-0000-0000-000000000000", "01a2015e-35e3-7000-8000-000000000004", 1000},
		{"cursor below since: empty", SearchQuery{Cursor: encodeCursor(cur), Since: at.Add(time.Millisecond)}, "01a2015e-35e4-0000-0000-000000000000", "01a2015e-35e3-7000-8000-000000000004", 50},
		{"until 1970: empty", SearchQuery{Until: time.Unix(0, 0)}, "ffffffff-ffff-ffff-ffff-ffffffffffff", "00000000-0000-0000-0000-000000000000", 50},
		{"since before 1970 is 1970", SearchQuery{Since: time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)}, "00000000-0000-0000-0000-000000000000", "ffffffff-ffff-ffff-ffff-ffffffffffff", 50},
		{"since = until: empty", SearchQuery{Since: at, Until: at}, "01a2015e-35e3-0000-0000-000000000000", "01a2015e-35e2-ffff-ffff-ffffffffffff", 50},
	} {
		rg, err := searchRange(tc.q)
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if rg.Low != mustID(t, tc.low) || rg.High != mustID(t, tc.high) || rg.Limit != tc.limit || rg.TLID != tc.q.TLID {
			t.Errorf("%s: range %s..%s limit %d, want %s..%s limit %d", tc.name, rg.Low, rg.High, rg.Limit, tc.low, tc.high, tc.limit)
		}
	}
}

// TestSearchRefusesBadParameters: each bad parameter is a FieldError
// naming it.
func TestSearchRefusesBadParameters(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 22, 3, 48, 1, 0, time.UTC)
	notV7 := base64Cursor(append([]byte{cursorVersion}, make([]byte, 16)...))
	for _, tc := range []struct {
		q     SearchQuery
		field string
	}{
		{SearchQuery{Limit: -1}, "limit"},
		{SearchQuery{Limit: 1001}, "limit"},
		{SearchQuery{Since: at.Add(time.Second), Until: at}, "since"},
		{SearchQuery{Prefix: "01x"}, "prefix"},
		{SearchQuery{Prefix: "-"}, "prefix"},
		{SearchQuery{Prefix: strings.Repeat("0", 33)}, "prefix"},
		{SearchQuery{Prefix: strings.Repeat("-", 36) + "0"}, "prefix"},
		{SearchQuery{Prefix: "é"}, "prefix"},
		{SearchQuery{Cursor: "!!!"}, "cursor"},
		{SearchQuery{Cursor: "AQ"}, "cursor"},
		{SearchQuery{Cursor: notV7}, "cursor"},
		{SearchQuery{Cursor: encodeCursor(traces.NewTraceID(at))[1:]}, "cursor"},
		{SearchQuery{Cursor: base64Cursor(append([]byte{2}, traces.NewTraceID(at).String()[:16]...))}, "cursor"},
	} {
		_, err := searchRange(tc.q)
		var fe *traces.FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: err %v, want a FieldError naming %s", tc.q, err, tc.field)
		}
	}
}

func base64Cursor(b []byte) string { return encodeCursorBytes(b) }

// TestCursorRoundTrip: a cursor names the ID it was made from, and the next
// page starts just below it.
func TestCursorRoundTrip(t *testing.T) {
	t.Parallel()
	id := traces.NewTraceID(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	got, err := decodeCursor(encodeCursor(id))
	if err != nil || got != id {
		t.Fatalf("decodeCursor(encodeCursor(%s)) = %s, %v", id, got, err)
	}
	if c := encodeCursor(id); strings.ContainsAny(c, "+/=") || len(c) != 23 {
		t.Errorf("cursor %q is not 23 characters of unpadded base64url", c)
	}
}
