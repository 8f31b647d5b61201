package holds_test

import (
	"errors"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/holds"
	"github.com/tracegw/tracegw/internal/traces"
)

// TestHoldEndChecks: an end must be one of a time or a duration, in the
// future and at most MaxHoldFor ahead; a refused hold changes nothing.
func TestHoldEndChecks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	r := e.put(t, 0, 5, 0)
	now := e.emu.E.Now()
	for _, tc := range []struct {
		name string
		sp   holds.Spec
	}{
		{"past", holds.Spec{Until: now.Add(-time.Minute)}},
		{"now", holds.Spec{Until: now.Add(-time.Millisecond)}},
		{"too far", holds.Spec{Until: now.Add(holds.MaxHoldFor + time.Hour)}},
		{"negative duration", holds.Spec{For: -time.Hour}},
		{"duration too long", holds.Spec{For: holds.MaxHoldFor + time.Second}},
		{"two ends", holds.Spec{Until: now.Add(time.Hour), For: time.Hour}},
		{"an end and none", holds.Spec{For: time.Hour, NoEnd: true}},
	} {
		_, err := e.svc.HoldWith(t.Context(), e.canvas, r.ID, tc.sp)
		var fe *traces.FieldError
		if !errors.As(err, &fe) || fe.Field != "until" {
			t.Errorf("%s: err %v, want a FieldError naming until", tc.name, err)
		}
	}
	diff(t, "holds after refusals", 0, len(e.list(t)))
	diff(t, "objects after refusals", []string{"false"}, e.objectHolds(t, keys(r)...))
}

func (e *env) list(t *testing.T) []holds.Hold {
	t.Helper()
	hs, err := e.svc.List(t.Context(), e.canvas)
	if err != nil {
		t.Fatal(err)
	}
	return hs
}

// TestHoldEnds: a hold for 3 days records its end and holder; a repeat
// without an end keeps it, one with a new end replaces it; ReleaseEnded
// leaves it before its end and releases it after, as a release does (the
// objects unheld with customTime now, the index's end cleared); the trace
// then lives a full retention period from that release, and an endless
// hold is never released by it.
func TestHoldEnds(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := t.Context()
	r := e.put(t, 0, 5, 1)
	forever := e.put(t, 1, 5, 0)
	start := e.emu.E.Now()
	h, err := e.svc.HoldWith(ctx, e.canvas, r.ID, holds.Spec{Reason: "incident", For: 72 * time.Hour, By: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(72 * time.Hour); h.Until.Before(want.Add(-time.Second)) || h.Until.After(want.Add(time.Second)) || h.By != "alice" {
		t.Errorf("HoldWith 72h = %+v, want until about %s by alice", h, want)
	}
	end := h.Until
	h, err = e.svc.HoldWith(ctx, e.canvas, r.ID, holds.Spec{Reason: "still", By: "bob"})
	if err != nil || !h.Until.Equal(end) || h.By != "alice" || h.Reason != "still" {
		t.Errorf("repeat without an end = %+v, %v; want the end kept, holder alice, reason still", h, err)
	}
	if _, err := e.svc.HoldWith(ctx, e.canvas, forever.ID, holds.Spec{For: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if h, err := e.svc.HoldWith(ctx, e.canvas, forever.ID, holds.Spec{NoEnd: true}); err != nil || !h.Until.IsZero() {
		t.Errorf("repeat with NoEnd = %+v, %v; want no end", h, err)
	}

	e.advance(t, 48*time.Hour)
	if ok, err := e.svc.ReleaseEnded(ctx, e.canvas, r.ID); err != nil || ok {
		t.Errorf("ReleaseEnded before the end = %v, %v; want not released", ok, err)
	}
	diff(t, "objects before the end", []string{"true", "true"}, e.objectHolds(t, keys(r)...))
	e.advance(t, 48*time.Hour)
	releasedAt := e.emu.E.Now().Truncate(time.Second)
	if ok, err := e.svc.ReleaseEnded(ctx, e.canvas, r.ID); err != nil || !ok {
		t.Fatalf("ReleaseEnded after the end = %v, %v; want released", ok, err)
	}
	if ok, err := e.svc.ReleaseEnded(ctx, e.canvas, forever.ID); err != nil || ok {
		t.Errorf("ReleaseEnded of an endless hold = %v, %v; want not released", ok, err)
	}
	diff(t, "objects after the end", []string{"false", "false"}, e.objectHolds(t, keys(r)...))
	diff(t, "index after the end", []string{"false", "false"}, e.indexHeld(t, r))
	for _, k := range keys(r) {
		info, err := e.gcs.Stat(ctx, k)
		if err != nil || info.CustomTime.Before(releasedAt) {
			t.Errorf("%s after the end: customTime %v, %v; want at least %s", k, info.CustomTime, err, releasedAt)
		}
	}
	diff(t, "holds left", []traces.TraceID{forever.ID}, ids(e.list(t)))
	if err := e.tokensLeft(t, r.ID); err != nil {
		t.Error(err)
	}
	// A full retention period from the release: there on its last day,
	// gone after it.
	e.advance(t, (retentionDays-1)*24*time.Hour)
	diff(t, "objects a day before retention runs out", []string{"false", "false"}, e.objectHolds(t, keys(r)...))
	e.advance(t, 2*24*time.Hour)
	diff(t, "objects after retention", []string{"gone", "gone"}, e.objectHolds(t, keys(r)...))
}

func ids(hs []holds.Hold) []traces.TraceID {
	out := []traces.TraceID{}
	for _, h := range hs {
		out = append(out, h.ID)
	}
	return out
}

func (e *env) tokensLeft(t *testing.T, id traces.TraceID) error {
	t.Helper()
	if n := e.tokens(t, id); n != 0 {
		return errors.New("operation tokens left behind")
	}
	return nil
}
