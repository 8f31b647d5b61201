package traces

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSummariesMsgpackRoundTrip(t *testing.T) {
	ts := time.Date(2026, 11, 22, 3, 4, 5, 6_000_000, time.UTC)
	list := []Summary{
		{ID: NewTraceID(ts), Timestamp: ts, RootTLID: 18446744073709551615, Held: true},
		{ID: NewTraceID(ts.Add(-time.Hour)), Timestamp: ts.Add(-time.Hour), RootTLID: 7},
	}
	got, err := DecodeTraceList(AppendTraceListMsgpack(nil, list), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(list, got); d != "" {
		t.Errorf("list (-want +got):\n%s", d)
	}
	m := map[TLID][]Summary{1: list, 2: {}}
	gotM, err := DecodeToplevels(AppendToplevelsMsgpack(nil, m), DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(m, gotM); d != "" {
		t.Errorf("toplevels (-want +got):\n%s", d)
	}
}
