package traces

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestSummariesMsgpackRoundTrip(t *testing.T) {
	ts := time.Date(2026, 11, 22, 3, 4, 5, 6_000_000, time.UTC)
	list := []Summary{
		{ID: NewTraceID(ts), Timestamp: ts, RootTLID: 18446744073709551615, Held: true,
			Kept: Kept{LatestFor: []TLID{7, 18446744073709551615}, Recent: true}},
		{ID: NewTraceID(ts.Add(-time.Hour)), Timestamp: ts.Add(-time.Hour), RootTLID: 7,
			Kept: Kept{Recent: true, ExpiresAfter: ts.Add(7 * 24 * time.Hour)}},
		{ID: NewTraceID(ts.Add(-2 * time.Hour)), Timestamp: ts.Add(-2 * time.Hour), RootTLID: 7,
			Kept: Kept{ExpiresAfter: ts.Add(-time.Minute)}},
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

func TestKeptBecause(t *testing.T) {
	for _, tc := range []struct {
		k    Kept
		held bool
		want []string
	}{
		{Kept{}, false, []string{}},
		{Kept{}, true, []string{"held"}},
		{Kept{Recent: true}, false, []string{"recent"}},
		{Kept{LatestFor: []TLID{1}, Recent: true}, true, []string{"latest", "recent", "held"}},
		{Kept{LatestFor: []TLID{1}}, false, []string{"latest"}},
	} {
		if d := cmp.Diff(tc.want, tc.k.KeptBecause(tc.held)); d != "" {
			t.Errorf("%+v held=%v (-want +got):\n%s", tc.k, tc.held, d)
		}
	}
}
