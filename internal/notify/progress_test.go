package notify

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/index"
)

// TestProgressRecorded: the consumer records the newest eventTime it
// applied and the largest lag in the index, at most every progressEvery of
// its clock, carrying what it saw in between to the next record.
func TestProgressRecorded(t *testing.T) {
	t.Parallel()
	r, _ := pstestRig(t)
	c := testCanvas(9)
	var clock atomic.Int64
	base := eventTime.Add(90 * time.Second) // 90s after the notifications' eventTime
	clock.Store(base.UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()).UTC() }
	r.start(nil, Options{MaxBatch: 1, MaxWait: time.Millisecond, Now: now})
	progress := func() []index.NotifyProgress {
		t.Helper()
		ps, err := r.db.NotifyProgresses(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}

	r.publishDelete(r.putTrace(c, 1, 7, 0), 7, nil)
	r.waitApplied(1)
	ps := progress()
	if len(ps) != 1 || ps[0].Bucket != testBucket || !ps[0].LastEventTime.Equal(eventTime) ||
		ps[0].Lag != 90*time.Second || !ps[0].RecordedAt.Equal(base) {
		t.Fatalf("progress after the first batch = %+v; want %s, lag 90s, recorded at %s", ps, eventTime, base)
	}

	clock.Store(base.Add(time.Second).UnixNano()) // within progressEvery: noted, not recorded
	r.publishDelete(r.putTrace(c, 2, 7, 0), 7, nil)
	r.waitApplied(2)
	if ps := progress(); !ps[0].RecordedAt.Equal(base) {
		t.Errorf("recorded again %s after the first record, want at most every %s", ps[0].RecordedAt.Sub(base), progressEvery)
	}

	later := base.Add(progressEvery + time.Second)
	clock.Store(later.UnixNano())
	r.publishDelete(r.putTrace(c, 3, 7, 0), 7, nil)
	r.waitApplied(3)
	ps = progress()
	if len(ps) != 1 || !ps[0].RecordedAt.Equal(later) || ps[0].Lag != later.Sub(eventTime) {
		t.Errorf("progress after %s = %+v; want recorded at %s with lag %s", progressEvery, ps, later, later.Sub(eventTime))
	}
}
