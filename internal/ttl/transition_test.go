package ttl

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

func TestPlanChange(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	earlier := now.Add(-72 * time.Hour)
	rule := func(days int64) Rule { return Rule{Days: days, Found: true} }
	settled := index.PolicyRecord{RetentionDays: 7, Keep: 10, UpdatedAt: earlier}
	raising := index.PolicyRecord{RetentionDays: 14, PrevRetentionDays: 7, RuleChangedAt: now.Add(-time.Hour),
		RetentionSettlesAt: now.Add(-time.Hour + SettleWindow), Keep: 10, UpdatedAt: earlier}
	lowering := index.PolicyRecord{RetentionDays: 7, PrevRetentionDays: 14, Keep: 10, UpdatedAt: earlier}
	keepPending := index.PolicyRecord{RetentionDays: 7, Keep: 20, PrevKeep: 10, KeepChangedAt: earlier, KeepPending: true, UpdatedAt: earlier}

	for _, tc := range []struct {
		name     string
		rec      index.PolicyRecord
		have     bool
		rule     Rule
		want     ChangeRequest
		start    index.PolicyRecord // UpdatedAt is checked separately
		write    bool
		markDue  bool
		setRule  bool
		line     string // a substring of the plan
		wantErr  string
		errIsDis bool
	}{
		{name: "raise retention", rec: settled, have: true, rule: rule(7), want: ChangeRequest{Retention: 14 * Day},
			start: index.PolicyRecord{RetentionDays: 14, PrevRetentionDays: 7, Keep: 10},
			write: true, setRule: true, line: "retention 7d → 14d: change the rule; GC goes on renewing against 7d until 2d after the change"},
		{name: "lower retention", rec: settled, have: true, rule: rule(7), want: ChangeRequest{Retention: 3 * Day},
			start: index.PolicyRecord{RetentionDays: 3, PrevRetentionDays: 7, Keep: 10},
			write: true, setRule: true, line: "retention 7d → 3d: renew keepers against 3d first, then change the rule"},
		{name: "nothing to change", rec: settled, have: true, rule: rule(7), want: ChangeRequest{Retention: 7 * Day, Keep: 10},
			start: settled, line: "retention 7d: unchanged"},
		{name: "zero request keeps everything", rec: settled, have: true, rule: rule(7), want: ChangeRequest{},
			start: settled, line: "keep 10: unchanged"},
		{name: "rule changed outside tracegw to 3d, restore 7d", rec: settled, have: true, rule: rule(3), want: ChangeRequest{Retention: 7 * Day},
			start: index.PolicyRecord{RetentionDays: 7, PrevRetentionDays: 3, Keep: 10},
			write: true, setRule: true, line: "retention 3d → 7d"},
		{name: "rule changed outside tracegw to 14d, restore 7d", rec: settled, have: true, rule: rule(14), want: ChangeRequest{Retention: 7 * Day},
			start: index.PolicyRecord{RetentionDays: 7, PrevRetentionDays: 7, Keep: 10},
			write: true, setRule: true},
		{name: "re-run of a raise that settles", rec: raising, have: true, rule: rule(14), want: ChangeRequest{Retention: 14 * Day},
			start: raising, line: "the change settles at"},
		{name: "another change while one settles", rec: raising, have: true, rule: rule(14), want: ChangeRequest{Retention: 10 * Day},
			wantErr: "a retention change from 7d to 14d is in progress", errIsDis: true},
		{name: "re-run of a lowering whose rule was not changed", rec: lowering, have: true, rule: rule(14), want: ChangeRequest{Retention: 7 * Day},
			start: lowering, setRule: true, line: "finish the change in progress"},
		{name: "keep raised", rec: settled, have: true, rule: rule(7), want: ChangeRequest{Keep: 20},
			start: index.PolicyRecord{RetentionDays: 7, Keep: 20, PrevKeep: 10, KeepChangedAt: now, KeepPending: true},
			write: true, markDue: true, line: "keep 10 → 20: mark every toplevel due"},
		{name: "keep lowered", rec: settled, have: true, rule: rule(7), want: ChangeRequest{Keep: 5},
			start: index.PolicyRecord{RetentionDays: 7, Keep: 5, PrevKeep: 10, KeepChangedAt: now},
			write: true, line: "keep 10 → 5: immediate"},
		{name: "re-run of a pending keep raise", rec: keepPending, have: true, rule: rule(7), want: ChangeRequest{Keep: 20},
			start: keepPending, markDue: true, line: "finish the raise in progress"},
		{name: "pending raise to 20 retargeted to 15", rec: keepPending, have: true, rule: rule(7), want: ChangeRequest{Keep: 15},
			start: index.PolicyRecord{RetentionDays: 7, Keep: 15, PrevKeep: 10, KeepChangedAt: now, KeepPending: true},
			write: true, markDue: true},
		{name: "pending raise abandoned for the old keep", rec: keepPending, have: true, rule: rule(7), want: ChangeRequest{Keep: 10},
			start: index.PolicyRecord{RetentionDays: 7, Keep: 10, PrevKeep: 20, KeepChangedAt: now},
			write: true},
		{name: "no record: the keep is a raise from nothing known", rule: rule(7), want: ChangeRequest{Keep: 10},
			start: index.PolicyRecord{RetentionDays: 7, Keep: 10, KeepChangedAt: now, KeepPending: true},
			write: true, markDue: true, line: "keep none recorded → 10"},
		{name: "no record, no keep asked: the default", rule: rule(7), want: ChangeRequest{Retention: 14 * Day, KeepIfNone: 10},
			start: index.PolicyRecord{RetentionDays: 14, PrevRetentionDays: 7, Keep: 10, KeepChangedAt: now, KeepPending: true},
			write: true, markDue: true, setRule: true},
		{name: "no rule", rule: Rule{}, want: ChangeRequest{Retention: 7 * Day}, wantErr: "tracegw setup-bucket", errIsDis: true},
		{name: "retention not whole days", rec: settled, have: true, rule: rule(7), want: ChangeRequest{Retention: 36 * time.Hour},
			wantErr: "retention"},
		{name: "keep too large", rec: settled, have: true, rule: rule(7), want: ChangeRequest{Keep: MaxKeep + 1}, wantErr: "keep-per-toplevel"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := planChange(tc.rec, tc.have, tc.rule, tc.want, now)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("planChange = %v, want an error containing %q", err, tc.wantErr)
				}
				if tc.errIsDis != errors.Is(err, ErrDisagree) || (!tc.errIsDis && !errors.Is(err, traces.ErrInvalid)) {
					t.Errorf("planChange error %v: wrong sentinel", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("planChange: %v", err)
			}
			if p.write != tc.write || p.markDue != tc.markDue || p.setRule != tc.setRule {
				t.Errorf("write %v markDue %v setRule %v, want %v %v %v", p.write, p.markDue, p.setRule, tc.write, tc.markDue, tc.setRule)
			}
			got := p.start
			if tc.write {
				if !got.UpdatedAt.Equal(now) {
					t.Errorf("start.UpdatedAt = %s, want now", got.UpdatedAt)
				}
			} else if !got.UpdatedAt.Equal(tc.rec.UpdatedAt) {
				t.Errorf("start.UpdatedAt = %s, want the record's", got.UpdatedAt)
			}
			got.UpdatedAt, tc.start.UpdatedAt = time.Time{}, time.Time{}
			if diff := cmp.Diff(tc.start, got); diff != "" {
				t.Errorf("start record (-want +got):\n%s", diff)
			}
			if p.done.KeepPending {
				t.Errorf("done record still has KeepPending")
			}
			if tc.line != "" && !strings.Contains(strings.Join(p.lines, "\n"), tc.line) {
				t.Errorf("plan %q lacks %q", p.lines, tc.line)
			}
			// Whatever the plan records first, GC resolves it to a
			// retention no laxer than the strictest one that may apply.
			cfg := DefaultPolicy()
			cfg.Retention, cfg.Keep = time.Duration(p.start.RetentionDays)*Day, p.start.Keep
			eff, err := Resolve(cfg, tc.rule, p.start, true, now)
			if err != nil {
				t.Fatalf("Resolve of the start record: %v", err)
			}
			strictest := min(tc.rule.Days, p.start.RetentionDays)
			if tc.have {
				strictest = min(strictest, tc.rec.RetentionDays)
			}
			if got := int64(eff.Retention / Day); got > strictest {
				t.Errorf("GC would renew against %dd during the change, want at most %dd", got, strictest)
			}
			if eff.Keep.Default != p.start.Keep {
				t.Errorf("GC would keep %d during the change, want %d", eff.Keep.Default, p.start.Keep)
			}
		})
	}
}

func TestCompleteAt(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	settles := now.Add(47 * time.Hour)
	for _, tc := range []struct {
		rec  index.PolicyRecord
		want time.Time
	}{
		{index.PolicyRecord{RetentionDays: 14, PrevRetentionDays: 7, RuleChangedAt: now, RetentionSettlesAt: settles}, settles},
		{index.PolicyRecord{RetentionDays: 7, PrevRetentionDays: 14, RuleChangedAt: now, RetentionSettlesAt: settles}, now},
		{index.PolicyRecord{RetentionDays: 7}, now},
	} {
		if got := completeAt(tc.rec, now); !got.Equal(tc.want) {
			t.Errorf("completeAt(%+v) = %s, want %s", tc.rec, got, tc.want)
		}
	}
}
