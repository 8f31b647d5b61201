package ttl

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	h := time.Hour
	for _, tc := range []struct {
		name string
		p    Policy
		want []string // substrings, one per expected error; none means valid
	}{
		{"defaults", DefaultPolicy(), nil},
		{"margin exactly 3*interval+1d", Policy{Retention: 7 * Day, Margin: 27 * h, Interval: h, Keep: 10}, nil},
		{"margin exactly 2*interval+1d (the old rule) is short now", Policy{Retention: 7 * Day, Margin: 26 * h, Interval: h, Keep: 10},
			[]string{"renewMargin: 26h0m0s is unsafe: it must be at least 3 x gcInterval + 1d = 27h0m0s"}},
		{"margin 1s short", Policy{Retention: 7 * Day, Margin: 27*h - time.Second, Interval: h, Keep: 10},
			[]string{"renewMargin: 26h59m59s is unsafe: it must be at least 3 x gcInterval + 1d = 27h0m0s", "raise renewMargin or lower gcInterval"}},
		{"interval too long for margin", Policy{Retention: 7 * Day, Margin: 2 * Day, Interval: 9 * h, Keep: 10},
			[]string{"renewMargin: 2d is unsafe", "3 x gcInterval + 1d = 51h0m0s", "lower gcInterval"}},
		{"8h interval fits a 2d margin", Policy{Retention: 7 * Day, Margin: 2 * Day, Interval: 8 * h, Keep: 10}, nil},
		{"one-day retention cannot hold a one-day margin", Policy{Retention: Day, Margin: 27 * h, Interval: h, Keep: 10},
			[]string{"renewMargin: 27h0m0s must be less than retention 1d"}},
		{"margin equal to retention", Policy{Retention: 3 * Day, Margin: 3 * Day, Interval: h, Keep: 1},
			[]string{"must be less than retention 3d"}},
		{"retention not whole days", Policy{Retention: 7*Day + h, Margin: 2 * Day, Interval: h, Keep: 10},
			[]string{"retention: 169h0m0s: want whole days"}},
		{"retention zero", Policy{Retention: 0, Margin: 2 * Day, Interval: h, Keep: 10},
			[]string{"retention: 0s: want whole days"}},
		{"interval zero", Policy{Retention: 7 * Day, Margin: 2 * Day, Interval: 0, Keep: 10},
			[]string{"gcInterval: 0s: want a positive duration"}},
		{"keep zero", Policy{Retention: 7 * Day, Margin: 2 * Day, Interval: h, Keep: 0},
			[]string{"keepPerToplevel: 0: want 1 to 100"}},
		{"keep 100", Policy{Retention: 7 * Day, Margin: 2 * Day, Interval: h, Keep: 100}, nil},
		{"keep 101", Policy{Retention: 7 * Day, Margin: 2 * Day, Interval: h, Keep: 101},
			[]string{"keepPerToplevel: 101"}},
		{"everything wrong at once", Policy{Retention: h, Margin: 0, Interval: -h, Keep: -1},
			[]string{"retention:", "gcInterval:", "keepPerToplevel:"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want errors containing %q", tc.want)
			}
			if !errors.Is(err, traces.ErrInvalid) {
				t.Errorf("Validate() = %v, want it to wrap traces.ErrInvalid", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Validate() = %q, want it to contain %q", err, w)
				}
			}
		})
	}
}

func TestPolicyArithmetic(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		p           Policy
		renewBefore time.Time
		days        int64
	}{
		{DefaultPolicy(), now.Add(-5 * Day), 7},
		{Policy{Retention: 30 * Day, Margin: 3 * Day, Interval: 6 * time.Hour, Keep: 10}, now.Add(-27 * Day), 30},
		{Policy{Retention: 2 * Day, Margin: 26 * time.Hour, Interval: 30 * time.Minute, Keep: 1}, now.Add(-22 * time.Hour), 2},
	} {
		if err := tc.p.Validate(); err != nil {
			t.Fatalf("%+v: %v", tc.p, err)
		}
		if got := tc.p.RenewBefore(now); !got.Equal(tc.renewBefore) {
			t.Errorf("%+v: RenewBefore = %s, want %s", tc.p, got, tc.renewBefore)
		}
		want := traces.LifecycleRule{Action: "Delete", DaysSinceCustomTime: tc.days}
		if got := tc.p.LifecycleRule(); got.Action != want.Action || got.DaysSinceCustomTime != want.DaysSinceCustomTime || len(got.Other) != 0 {
			t.Errorf("%+v: traces.LifecycleRule = %+v, want %+v", tc.p, got, want)
		}
		// The safety property itself (Policy's doc): a keeper a pass found
		// not yet due at now, whose next pass starts an interval later and
		// fails, and the pass after starts another interval later and ends
		// at its deadline of one interval, is renewed at least a day before
		// the rule can match it.
		lastRenewed := tc.p.RenewBefore(now)                    // due from now on
		renewedBy := now.Add(3 * tc.p.Interval)                 // failed pass, then one to its deadline
		deletableFrom := lastRenewed.Add(tc.p.Retention)        // never before this
		if slack := deletableFrom.Sub(renewedBy); slack < Day { // margin - 3*interval
			t.Errorf("%+v: renewed only %s before the rule can match", tc.p, slack)
		}
		if m := MinMargin(tc.p.Interval); m != 3*tc.p.Interval+Day {
			t.Errorf("MinMargin(%s) = %s", tc.p.Interval, m)
		}
	}
}
