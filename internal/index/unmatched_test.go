package index

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/internal/traces"
)

// The listing is newest first, one entry per route, and its limit keeps the
// newest routes: route order (descending here, so /c, /b, /a) never decides.
func TestListUnmatchedNewestFirst(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(0x51)
	at := func(route string, sec int) traces.UnmatchedEntry {
		ts := base.Add(time.Duration(sec) * time.Second)
		e := traces.UnmatchedEntry{Canvas: c, ID: traces.NewTraceID(ts), Module: "HTTP", Path: route, Modifier: "GET", Timestamp: ts}
		if err := db.PutUnmatched(t.Context(), e); err != nil {
			t.Fatalf("PutUnmatched: %v", err)
		}
		return e
	}
	at("/c", 0)
	b := at("/b", 1)
	a := at("/a", 2)
	c3 := at("/c", 3)
	at("/old", -3600) // before since: not listed
	since := base.Add(-time.Minute)
	names := func(es []traces.UnmatchedEntry) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Path+"@"+e.Timestamp.Sub(base).String())
		}
		return out
	}
	for _, tc := range []struct {
		limit int
		want  []traces.UnmatchedEntry
	}{
		{10, []traces.UnmatchedEntry{c3, a, b}},
		{2, []traces.UnmatchedEntry{c3, a}},
	} {
		got, err := db.ListUnmatched(t.Context(), c, since, tc.limit)
		if err != nil {
			t.Fatalf("ListUnmatched: %v", err)
		}
		if d := cmp.Diff(names(tc.want), names(got)); d != "" {
			t.Errorf("limit %d (-want +got):\n%s", tc.limit, d)
		}
		if len(got) > 0 && got[0].ID != c3.ID {
			t.Errorf("limit %d: first is %s, want the newest request of /c %s", tc.limit, got[0].ID, c3.ID)
		}
	}
}
