package emulator_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"

	"github.com/tracegw/tracegw/emulator"
)

// The clock routes: GET reports now; advance moves it in Step-sized steps,
// calling OnStep at each, sweeping lifecycle after it, and Drain once.
func TestClockRoutesAndHooks(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{Step: 6 * time.Hour})
	var mu sync.Mutex
	var steps []time.Time
	drains := 0
	v.E.SetHooks(emulator.Hooks{
		OnStep: func(ctx context.Context, now time.Time) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			steps = append(steps, now)
			return 2, nil
		},
		Drain: func(ctx context.Context) (int, error) {
			mu.Lock()
			defer mu.Unlock()
			drains++
			return 7, nil
		},
	})
	v.put(t, "old", "x", func(w *storage.Writer) { w.CustomTime = v.secs() })
	v.setLifecycle(t, deleteRule(storage.LifecycleCondition{DaysSinceCustomTime: 1}))

	status, body := v.do(t, http.MethodGet, "/_emulator/clock", nil)
	var clock struct{ Now time.Time }
	if status != 200 || json.Unmarshal(body, &clock) != nil {
		t.Fatalf("GET clock: %d %s", status, body)
	}
	status, body = v.do(t, http.MethodPost, "/_emulator/clock/advance?by=1d6h", nil)
	if status != 200 {
		t.Fatalf("advance: %d %s", status, body)
	}
	var raw map[string]any
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatalf("decode summary: %v", err)
	}
	for _, k := range []string{"now", "renewed", "deleted", "notificationsConsumed"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("summary %s lacks %q", body, k)
		}
	}
	var sum emulator.Summary
	if err := json.Unmarshal(body, &sum); err != nil {
		t.Fatalf("decode summary: %v", err)
	}
	if sum.Renewed != 10 || sum.Deleted != 1 || sum.NotificationsConsumed != 7 {
		t.Errorf("summary %+v, want renewed 10 (5 steps x 2), deleted 1, consumed 7", sum)
	}
	if _, ok := raw["note"]; !ok || !strings.Contains(sum.Note, "the other 6") {
		t.Errorf("summary %s: consumed 7 but deleted 1, want a note explaining the 6 others", body)
	}
	if d := sum.Now.Sub(clock.Now); d < 30*time.Hour || d > 31*time.Hour {
		t.Errorf("clock moved %s, want about 30h", d)
	}
	mu.Lock()
	if len(steps) != 5 || drains != 1 {
		t.Errorf("%d steps and %d drains, want 5 and 1", len(steps), drains)
	}
	for i := 1; i < len(steps); i++ {
		if d := steps[i].Sub(steps[i-1]); d < 6*time.Hour || d > 6*time.Hour+time.Minute {
			t.Errorf("step %d moved %s, want 6h", i, d)
		}
	}
	mu.Unlock()
	for _, by := range []string{"", "soon", "-1h"} {
		status, body := v.do(t, http.MethodPost, "/_emulator/clock/advance?by="+by, nil)
		if status != 400 {
			t.Errorf("advance by=%q: got %d %s, want 400", by, status, body)
		}
		var e struct{ Error struct{ Code, Field string } }
		if json.Unmarshal(body, &e) != nil || e.Error.Code != "invalid_argument" || e.Error.Field != "by" {
			t.Errorf("advance by=%q: body %s is not an invalid_argument error naming by", by, body)
		}
	}
	v.E.SetHooks(emulator.Hooks{OnStep: func(context.Context, time.Time) (int, error) { return 0, errors.New("gc down") }})
	if _, err := v.E.Advance(t.Context(), time.Hour); err == nil {
		t.Errorf("advance with a failing hook: want an error")
	}
}

// Advances are serialised and safe alongside requests.
func TestAdvanceConcurrent(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{})
	v.setLifecycle(t, deleteRule(storage.LifecycleCondition{AgeInDays: 1, MatchesPrefix: []string{"tmp/"}}))
	start := v.E.Now()
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			if _, err := v.E.Advance(t.Context(), 3*time.Hour); err != nil {
				t.Errorf("advance: %v", err)
			}
		})
		wg.Go(func() {
			name := "tmp/" + string(rune('a'+i))
			if _, err := v.tryPut(t, v.obj(name), "x", nil); err != nil {
				t.Errorf("upload: %v", err)
			}
		})
	}
	wg.Wait()
	if d := v.E.Now().Sub(start); d < 12*time.Hour || d > 12*time.Hour+time.Minute {
		t.Errorf("clock moved %s, want 12h", d)
	}
	v.advance(t, 24*time.Hour)
	if n := v.names(t); len(n) != 0 {
		t.Errorf("survivors %v, want none", n)
	}
}

// The fault switch answers the next N matching calls with the status, then
// recovers; DELETE clears it.
func TestFaults(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{})
	v.put(t, "o", "x", nil)
	status, body := v.do(t, http.MethodPost, "/_emulator/faults", map[string]any{"kind": "metadata", "count": 2, "status": 503})
	if status != 200 {
		t.Fatalf("set fault: %d %s", status, body)
	}
	if status, _ := v.do(t, http.MethodGet, v.objectPath("o")+"?alt=media", nil); status != 200 {
		t.Errorf("a read is not a metadata call: got %d", status)
	}
	for i := range 2 {
		status, body := v.do(t, http.MethodGet, v.objectPath("o"), nil)
		var e struct {
			Error struct {
				Code   int
				Errors []struct{ Reason string }
			}
		}
		if status != 503 || json.Unmarshal(body, &e) != nil || e.Error.Code != 503 || len(e.Error.Errors) != 1 || e.Error.Errors[0].Reason != "backendError" {
			t.Errorf("call %d: %d %s, want a GCS-style 503", i, status, body)
		}
	}
	if status, _ := v.do(t, http.MethodGet, v.objectPath("o"), nil); status != 200 {
		t.Errorf("after the faults: got %d, want 200", status)
	}

	// The Go client retries 503s and recovers.
	v.E.InjectFaults("any", 2, 503)
	fast := v.obj("o").Retryer(storage.WithBackoff(gax.Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond}))
	if _, err := fast.Attrs(t.Context()); err != nil {
		t.Errorf("client through 2 faults: %v", err)
	}
	v.E.InjectFaults("upload", 1, 429)
	if _, err := v.tryPut(t, v.obj("p"), "x", nil); code(err) != 429 {
		t.Errorf("upload fault: got %v, want 429", err)
	}
	v.E.InjectFaults("delete", 5, 500)
	if status, _ := v.do(t, http.MethodDelete, "/_emulator/faults", nil); status != 204 {
		t.Errorf("clear faults: %d", status)
	}
	if err := v.obj("o").Delete(t.Context()); err != nil {
		t.Errorf("delete after clearing faults: %v", err)
	}
	if status, _ := v.do(t, http.MethodPost, "/_emulator/faults", map[string]any{"kind": "bogus", "count": 1}); status != 400 {
		t.Errorf("bad kind: got %d, want 400", status)
	}
}
