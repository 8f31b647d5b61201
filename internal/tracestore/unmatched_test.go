package tracestore_test

import (
	"errors"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/tracegw/tracegw/internal/traces"
)

func (r *execRig) unmatched(t *testing.T, module, path, modifier string, input int) traces.UnmatchedEntry {
	t.Helper()
	e, err := r.svc.SaveUnmatched(t.Context(), r.c, traces.Unmatched{
		Module: module, Path: path, Modifier: modifier,
		Input: []traces.InputVar{{Name: "request", Value: value(input)}},
	})
	if err != nil {
		t.Fatalf("SaveUnmatched: %v", err)
	}
	return e
}

func (r *execRig) listUnmatched(t *testing.T) []traces.UnmatchedEntry {
	t.Helper()
	list, err := r.svc.ListUnmatched(t.Context(), r.c)
	if err != nil {
		t.Fatalf("ListUnmatched: %v", err)
	}
	return list
}

func (r *execRig) count(t *testing.T, prefix string) int {
	t.Helper()
	n := 0
	for _, err := range r.gcs.Objects(t.Context(), prefix) {
		if err != nil {
			t.Fatalf("list %s: %v", prefix, err)
		}
		n++
	}
	return n
}

// The listing shows the newest request per route; after the retention
// period the lifecycle rule deletes the objects and the listing (which
// filters by the same clock) shows none.
func TestUnmatchedNewestPerRouteThenExpire(t *testing.T) {
	t.Parallel()
	r := newExecRig(t)
	ctx := t.Context()
	if _, err := r.emu.Client.Bucket(r.emu.Bucket).Update(ctx, storage.BucketAttrsToUpdate{Lifecycle: &storage.Lifecycle{
		Rules: []storage.LifecycleRule{{
			Action:    storage.LifecycleAction{Type: storage.DeleteAction},
			Condition: storage.LifecycleCondition{DaysSinceCustomTime: 7},
		}},
	}}); err != nil {
		t.Fatalf("set lifecycle: %v", err)
	}
	advance := func(d time.Duration) {
		t.Helper()
		if _, err := r.emu.E.Advance(ctx, d); err != nil {
			t.Fatalf("advance: %v", err)
		}
	}
	var newestA traces.UnmatchedEntry
	for i := range 3 {
		newestA = r.unmatched(t, "HTTP", "/a", "GET", i)
		advance(time.Minute)
	}
	b := r.unmatched(t, "HTTP", "/b", "POST", 9)
	cron := r.unmatched(t, "CRON", "daily", "", 9)
	want := []traces.UnmatchedEntry{newestA, b, cron}
	less := func(a, b traces.UnmatchedEntry) bool { return a.Path < b.Path }
	if d := cmp.Diff(want, r.listUnmatched(t), cmpopts.SortSlices(less)); d != "" {
		t.Errorf("listing (-want +got):\n%s", d)
	}
	advance(6 * 24 * time.Hour)
	if n := len(r.listUnmatched(t)); n != 3 {
		t.Errorf("listed after 6 days = %d, want 3", n)
	}
	advance(2 * 24 * time.Hour)
	if got := r.listUnmatched(t); len(got) != 0 {
		t.Errorf("listed after 8 days = %v, want none", got)
	}
	if n := r.count(t, r.c.String()+"/404s/"); n != 0 {
		t.Errorf("unmatched objects after 8 days = %d, want 0", n)
	}
}

func TestUnmatchedDismissAndPromote(t *testing.T) {
	t.Parallel()
	r := newExecRig(t)
	ctx := t.Context()
	a := r.unmatched(t, "HTTP", "/a", "GET", 1)
	r.unmatched(t, "HTTP", "/a", "GET", 2)
	b := r.unmatched(t, "HTTP", "/b", "GET", 3)
	if err := r.svc.DismissUnmatched(ctx, r.c, "HTTP", "/a", "GET"); err != nil {
		t.Fatalf("Dismiss: %v", err)
	}
	if got := r.listUnmatched(t); len(got) != 1 || got[0].ID != b.ID {
		t.Errorf("after dismissing /a: %v, want only %s", got, b.ID)
	}
	saved, err := r.svc.PromoteUnmatched(ctx, r.c, b.ID, 77)
	if err != nil {
		t.Fatalf("Promote: %v", err)
	}
	if saved.ID == b.ID {
		t.Errorf("promoted trace kept the request's ID")
	}
	if ids := r.listed(t, 77); len(ids) != 1 || ids[0] != saved.ID {
		t.Errorf("listed under the new handler = %v, want [%s]", ids, saved.ID)
	}
	read, err := r.svc.Get(ctx, r.c, saved.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if d := cmp.Diff([]traces.InputVar{{Name: "request", Value: value(3)}}, read.Trace.Input); d != "" {
		t.Errorf("promoted input (-want +got):\n%s", d)
	}
	if got := r.listUnmatched(t); len(got) != 0 {
		t.Errorf("after promote: %v, want none", got)
	}
	// The dismissed request's object is still there (it expires), so it
	// can still be promoted; an unknown one cannot.
	if _, err := r.svc.PromoteUnmatched(ctx, r.c, a.ID, 78); err != nil {
		t.Errorf("Promote(dismissed) = %v", err)
	}
	if _, err := r.svc.PromoteUnmatched(ctx, r.c, traces.NewTraceID(r.now()), 78); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("Promote(unknown) = %v, want ErrNotFound", err)
	}
	for _, route := range [][3]string{{"", "/a", "GET"}, {"HTTP", "", "GET"}} {
		if err := r.svc.DismissUnmatched(ctx, r.c, route[0], route[1], route[2]); !errors.Is(err, traces.ErrInvalid) {
			t.Errorf("Dismiss(%q) = %v, want ErrInvalid", route, err)
		}
	}
}
