package ttl

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	cfg := func(days int64, keep int) Policy {
		p := DefaultPolicy()
		p.Retention, p.Keep = time.Duration(days)*Day, keep
		return p
	}
	rule := func(days int64) Rule { return Rule{Days: days, Found: true} }
	settled := index.PolicyRecord{RetentionDays: 7, Keep: 10}
	// 7d → 14d, rule changed an hour ago: GCS may apply 7d until +47h.
	raising := index.PolicyRecord{RetentionDays: 14, PrevRetentionDays: 7, RuleChangedAt: now.Add(-time.Hour),
		RetentionSettlesAt: now.Add(-time.Hour + SettleWindow), Keep: 10}
	raisedLongAgo := raising
	raisedLongAgo.RuleChangedAt, raisedLongAgo.RetentionSettlesAt = now.Add(-SettleWindow-time.Hour), now.Add(-time.Hour)
	// 14d → 7d recorded, the rule not yet changed (retention set is running).
	lowering := index.PolicyRecord{RetentionDays: 7, PrevRetentionDays: 14, Keep: 10}
	keepRaised := index.PolicyRecord{RetentionDays: 7, Keep: 20, PrevKeep: 10, KeepChangedAt: now.Add(-time.Hour), KeepPending: true}
	keepRaisedLongAgo := keepRaised
	keepRaisedLongAgo.KeepChangedAt, keepRaisedLongAgo.KeepPending = now.Add(-SettleWindow), false

	for _, tc := range []struct {
		name          string
		cfg           Policy
		rule          Rule
		rec           index.PolicyRecord
		have          bool
		wantRetention int64 // days
		wantKeep      int
		wantFresh     bool
		wantErr       []string // substrings; the error wraps ErrDisagree
		list          [2]int   // with wantErr: listingPolicy's retention (days) and keep
	}{
		{name: "no rule", cfg: cfg(7, 10), rule: Rule{}, wantErr: []string{"no tracegw lifecycle rule", "tracegw setup-bucket"}, list: [2]int{7, 10}},
		{name: "fresh install, flags match the rule", cfg: cfg(7, 10), rule: rule(7), wantRetention: 7, wantKeep: 10, wantFresh: true},
		{name: "fresh install, rule 7d, flag 14d", cfg: cfg(14, 10), rule: rule(7),
			wantErr: []string{"--retention 14d disagrees with the bucket's lifecycle rule (7d)", "tracegw retention set --retention 14d"}, list: [2]int{7, 10}},
		{name: "settled, all agree", cfg: cfg(7, 10), rule: rule(7), rec: settled, have: true, wantRetention: 7, wantKeep: 10},
		{name: "settled, flag 14d", cfg: cfg(14, 10), rule: rule(7), rec: settled, have: true,
			wantErr: []string{"--retention 14d disagrees with the retention recorded", "(7d)", "tracegw retention set --retention 14d"}, list: [2]int{7, 10}},
		{name: "settled, rule changed outside tracegw", cfg: cfg(7, 10), rule: rule(3), rec: settled, have: true,
			wantErr: []string{"the bucket's lifecycle rule (3d) disagrees", "changed outside tracegw", "tracegw retention set --retention N"}, list: [2]int{3, 10}},
		{name: "settled, keep flag differs", cfg: cfg(7, 20), rule: rule(7), rec: settled, have: true,
			wantErr: []string{"--keep-per-toplevel 20 disagrees with the keep recorded", "(10)", "tracegw retention set --keep-per-toplevel 20"}, list: [2]int{7, 10}},
		{name: "everything wrong at once", cfg: cfg(14, 20), rule: rule(3), rec: settled, have: true,
			wantErr: []string{"--retention 14d", "lifecycle rule (3d)", "--keep-per-toplevel 20"}, list: [2]int{3, 10}},
		{name: "raising: new flag and rule, old threshold", cfg: cfg(14, 10), rule: rule(14), rec: raising, have: true, wantRetention: 7, wantKeep: 10},
		{name: "raising: old flag still accepted", cfg: cfg(7, 10), rule: rule(14), rec: raising, have: true, wantRetention: 7, wantKeep: 10},
		{name: "raising: a third value is not", cfg: cfg(10, 10), rule: rule(14), rec: raising, have: true,
			wantErr: []string{"--retention 10d disagrees", "(14d, or 7d while the change from 7d settles, until"}, list: [2]int{7, 10}},
		{name: "raised 49h ago: new threshold", cfg: cfg(14, 10), rule: rule(14), rec: raisedLongAgo, have: true, wantRetention: 14, wantKeep: 10},
		{name: "raised 49h ago: old flag refused", cfg: cfg(7, 10), rule: rule(14), rec: raisedLongAgo, have: true,
			wantErr: []string{"--retention 7d disagrees", "(14d)"}, list: [2]int{7, 10}},
		{name: "lowering, rule not yet changed: new threshold", cfg: cfg(14, 10), rule: rule(14), rec: lowering, have: true, wantRetention: 7, wantKeep: 10},
		{name: "lowering, rule changed", cfg: cfg(7, 10), rule: rule(7), rec: lowering, have: true, wantRetention: 7, wantKeep: 10},
		{name: "lowering, rule not yet changed, any rule is taken into account", cfg: cfg(7, 10), rule: rule(5), rec: lowering, have: true,
			wantRetention: 5, wantKeep: 10},
		{name: "keep raised: recorded keep applies, old flag accepted", cfg: cfg(7, 10), rule: rule(7), rec: keepRaised, have: true,
			wantRetention: 7, wantKeep: 20},
		{name: "keep raised: new flag", cfg: cfg(7, 20), rule: rule(7), rec: keepRaised, have: true, wantRetention: 7, wantKeep: 20},
		{name: "keep raised 48h ago: old flag refused", cfg: cfg(7, 10), rule: rule(7), rec: keepRaisedLongAgo, have: true,
			wantErr: []string{"--keep-per-toplevel 10 disagrees", "(20)"}, list: [2]int{7, 20}},
		{name: "recorded retention unsafe with this margin", cfg: cfg(2, 10), rule: rule(2),
			rec: index.PolicyRecord{RetentionDays: 2, Keep: 10}, have: true, wantErr: []string{"renewMargin: 2d must be less than retention 2d"}, list: [2]int{2, 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eff, err := Resolve(tc.cfg, tc.rule, tc.rec, tc.have, now)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("Resolve = %+v, want an error", eff)
				}
				if !errors.Is(err, ErrDisagree) && !errors.Is(err, traces.ErrInvalid) {
					t.Errorf("error %v wraps neither ErrDisagree nor ErrInvalid", err)
				}
				for _, w := range tc.wantErr {
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q lacks %q", err, w)
					}
				}
				// Listings still describe the strictest retention named.
				if ret, keep := listingPolicy(tc.cfg, tc.rule, tc.rec, tc.have, now); ret != time.Duration(tc.list[0])*Day || keep != tc.list[1] {
					t.Errorf("listingPolicy = %s, %d; want %dd, %d", ret, keep, tc.list[0], tc.list[1])
				}
				return
			}
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got := int64(eff.Retention / Day); got != tc.wantRetention || eff.Keep.Default != tc.wantKeep || eff.Fresh != tc.wantFresh {
				t.Errorf("Resolve = retention %dd keep %d fresh %v, want %dd %d %v", got, eff.Keep.Default, eff.Fresh,
					tc.wantRetention, tc.wantKeep, tc.wantFresh)
			}
			if ret, keep := listingPolicy(tc.cfg, tc.rule, tc.rec, tc.have, now); ret != eff.Retention || keep != eff.Keep.Default {
				t.Errorf("listingPolicy = %s, %d; want Resolve's %s, %d", ret, keep, eff.Retention, eff.Keep.Default)
			}
		})
	}
}
