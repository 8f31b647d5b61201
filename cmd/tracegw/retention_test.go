package main

import (
	"slices"
	"testing"

	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// TestRetentionEndToEnd is the retention policy (docs/design.md) on the
// whole dev wiring: GC renewing keepers on the emulator's clock, the
// lifecycle rule deleting the rest, and their index rows leaving through
// the Pub/Sub consumer.
//
// Toplevel A gets 15 traces over 3 days, B 3, function F is touched by A's
// oldest 12, and toplevel D (2 traces) is reported deleted. After 30 days
// exactly A's newest 10, F's newest 10 (a trace kept for either reason
// survives), B's 3 remain; another 30 days change nothing.
func TestRetentionEndToEnd(t *testing.T) {
	dt := startDevTest(t, testutil.PG(t))
	const canvas = "7d3f5a1c-0000-4000-8000-0000000000bb"
	var a []string // oldest first
	for day := range 3 {
		for range 5 {
			tlids := []string{}
			if len(a) < 12 {
				tlids = append(tlids, "77") // F
			}
			a = append(a, dt.save(canvas, "1", tlids...))
		}
		if day < 2 {
			dt.advance("1d")
		}
	}
	var b, d []string
	for range 3 {
		b = append(b, dt.save(canvas, "2"))
	}
	for range 2 {
		d = append(d, dt.save(canvas, "4"))
	}
	if st, body := dt.do("DELETE", "/v1/canvases/"+canvas+"/toplevels/4", ""); st != 204 {
		t.Fatalf("forget toplevel: %d %s", st, body)
	}

	kept := slices.Concat(a[2:], b) // A's newest 10 are a[5:], F's newest 10 are a[2:12]
	gone := slices.Concat(a[:2], d)
	sum := dt.advance("30d")
	if sum.Deleted != len(gone) || sum.NotificationsConsumed != len(gone) {
		t.Errorf("30 days: %+v, want %d deleted and as many notifications consumed", sum, len(gone))
	}
	check := func(when string) {
		t.Helper()
		objs := dt.objects(canvas)
		c, _ := traces.ParseCanvasID(canvas)
		for _, id := range kept {
			tid, _ := traces.ParseTraceID(id)
			if !objs[traces.TraceKey(c, tid)] {
				t.Errorf("%s: kept trace %s was deleted", when, id)
			}
		}
		for _, id := range gone {
			tid, _ := traces.ParseTraceID(id)
			if objs[traces.TraceKey(c, tid)] {
				t.Errorf("%s: trace %s should have expired", when, id)
			}
			// Its rows left through the notification, before any read.
			if _, err := dt.d.st.db.Get(t.Context(), c, tid); err == nil {
				t.Errorf("%s: index rows of expired trace %s remain", when, id)
			}
		}
		if len(objs) != len(kept) {
			t.Errorf("%s: %d objects in the bucket, want %d", when, len(objs), len(kept))
		}
		want := func(tlid string, ids []string) {
			t.Helper()
			got := dt.list(canvas, tlid)
			w := slices.Clone(ids)
			slices.Reverse(w)
			if !slices.Equal(got, w) {
				t.Errorf("%s: toplevel %s lists %d traces %v, want %v", when, tlid, len(got), got, w)
			}
		}
		want("1", a[2:]) // its newest 10, plus the 3 older ones F keeps

		want("77", a[2:12])
		want("2", b)
		want("4", nil)
	}
	check("after 30 days")
	if sum := dt.advance("30d"); sum.Deleted != 0 || sum.NotificationsConsumed != 0 {
		t.Errorf("another 30 days: %+v, want nothing deleted", sum)
	}
	check("after 60 days")
}
