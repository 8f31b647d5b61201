package ttl

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

func tid(b byte) traces.TraceID { return traces.TraceID{15: b} }

func TestDecide(t *testing.T) {
	t.Parallel()
	before := time.Date(2026, 11, 15, 0, 0, 0, 0, time.UTC)
	old, edge, young := before.Add(-time.Second), before, before.Add(time.Hour)
	for _, tc := range []struct {
		name    string
		keepers []index.Keeper
		renew   []traces.TraceID
		fresh   []traces.TraceID
		held    int
	}{
		{name: "none"},
		{"old is renewed", []index.Keeper{{ID: tid(1), CustomTime: old}}, []traces.TraceID{tid(1)}, nil, 0},
		{"exactly at the bound is fresh", []index.Keeper{{ID: tid(1), CustomTime: edge}}, nil, []traces.TraceID{tid(1)}, 0},
		{"young is fresh", []index.Keeper{{ID: tid(1), CustomTime: young}}, nil, []traces.TraceID{tid(1)}, 0},
		// The index's held flag may be stale: a held keeper is renewed all
		// the same (sequence 3 of the keeper-safety review).
		{"held old is renewed", []index.Keeper{{ID: tid(1), CustomTime: old, Held: true}}, []traces.TraceID{tid(1)}, nil, 1},
		{"held young is fresh", []index.Keeper{{ID: tid(1), CustomTime: young, Held: true}}, nil, []traces.TraceID{tid(1)}, 1},
		{"mixed keeps order", []index.Keeper{
			{ID: tid(4), CustomTime: young}, {ID: tid(3), CustomTime: old, Held: true},
			{ID: tid(2), CustomTime: old}, {ID: tid(1), CustomTime: old.Add(-48 * time.Hour)},
		}, []traces.TraceID{tid(3), tid(2), tid(1)}, []traces.TraceID{tid(4)}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := decide(tc.keepers, before)
			var renew []traces.TraceID
			for _, k := range p.renew {
				renew = append(renew, k.ID)
			}
			if diff := cmp.Diff(tc.renew, renew); diff != "" {
				t.Errorf("renew (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.fresh, p.fresh); diff != "" {
				t.Errorf("fresh (-want +got):\n%s", diff)
			}
			if p.held != tc.held {
				t.Errorf("held = %d, want %d", p.held, tc.held)
			}
		})
	}
}

func TestRenewAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	ct := map[traces.TraceID]time.Time{
		tid(1): now, tid(2): now.Add(-3 * Day), tid(3): now.Add(-9 * Day), tid(4): now.Add(-Day),
	}
	out := map[traces.TraceID]outcome{
		tid(1): outRenewed, tid(2): outFresh, tid(3): outFresh, tid(4): outFresh,
		tid(5): outGone, tid(6): outFailed,
	}
	for _, tc := range []struct {
		name    string
		keepers []traces.TraceID
		want    time.Time
		ok      bool
	}{
		{"no keepers: the ceiling", nil, now, true},
		{"all renewed", []traces.TraceID{tid(1)}, now, true},
		{"oldest fresh wins", []traces.TraceID{tid(1), tid(2), tid(4)}, now.Add(-3 * Day), true},
		{"every keeper counts", []traces.TraceID{tid(3), tid(4)}, now.Add(-9 * Day), true},
		{"a gone keeper keeps it due", []traces.TraceID{tid(1), tid(5)}, time.Time{}, false},
		{"a failed keeper keeps it due", []traces.TraceID{tid(6), tid(1)}, time.Time{}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := renewAfter(tc.keepers, ct, out, now)
			if ok != tc.ok || !got.Equal(tc.want) {
				t.Errorf("renewAfter = %s, %v; want %s, %v", got, ok, tc.want, tc.ok)
			}
		})
	}
}
