package ttl

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/index"
)

func TestStatusWarnings(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	pass := func(startAgo, took time.Duration, outcome string) index.PassRecord {
		p := index.PassRecord{Replica: "h/1", StartedAt: now.Add(-startAgo), EndedAt: now.Add(-startAgo + took), Outcome: outcome,
			RetentionDays: 7, Keep: 10, Margin: 2 * Day, Interval: time.Hour}
		if outcome == index.PassOK {
			p.KeeperDeadline = p.StartedAt.Add(p.Margin)
		}
		return p
	}
	healthy := Status{
		Now: now, Rule: Rule{Days: 7, Found: true}, Record: index.PolicyRecord{RetentionDays: 7, Keep: 10}, HaveRecord: true,
		Last: pass(10*time.Minute, time.Minute, index.PassOK), HaveLast: true,
		LastOK: pass(10*time.Minute, time.Minute, index.PassOK), HaveLastOK: true,
		Notify: []index.NotifyProgress{{Bucket: "traces", LastEventTime: now.Add(-time.Minute), Lag: 3 * time.Second, RecordedAt: now}},
	}
	o := StatusOptions{Margin: 2 * Day, Interval: time.Hour, MaxNotifyLag: time.Hour}
	for _, tc := range []struct {
		name string
		edit func(s *Status)
		want []string // one substring per expected warning, in order
	}{
		{"healthy", func(*Status) {}, nil},
		{"no pass ever", func(s *Status) { s.HaveLast, s.HaveLastOK = false, false }, []string{"no GC pass recorded"}},
		{"last pass refused, GC stopped 26h ago", func(s *Status) {
			s.Last = pass(26*time.Hour, time.Second, index.PassRefused)
			s.Last.Error = "--retention 14d disagrees"
			s.LastOK = pass(27*time.Hour, time.Minute, index.PassOK)
		}, []string{"was refused: --retention 14d disagrees", "no GC pass for 26h", "the keeper deadline is in 21h"}},
		{"keeper deadline passed", func(s *Status) {
			s.Last = pass(10*time.Minute, time.Minute, index.PassFailed)
			s.LastOK = pass(3*Day, time.Minute, index.PassOK)
		}, []string{"failed", "the keeper deadline passed 1d ago"}},
		{"never succeeded", func(s *Status) { s.Last.Outcome, s.HaveLastOK = index.PassCutShort, false },
			[]string{"was cut short at its deadline", "no fully successful GC pass"}},
		{"slow pass", func(s *Status) { s.Last = pass(50*time.Minute, 40*time.Minute, index.PassOK) },
			[]string{"the last GC pass took 40m0s, more than 50% of the 1h0m0s interval"}},
		{"no rule", func(s *Status) { s.Rule = Rule{} }, []string{"no tracegw lifecycle rule"}},
		{"rule unreadable", func(s *Status) { s.RuleErr = errors.New("403") }, []string{"cannot be read: 403"}},
		{"rule changed outside tracegw", func(s *Status) { s.Rule.Days = 3 }, []string{"lifecycle rule (3d) disagrees with the recorded retention (7d)"}},
		{"raise settling: fine", func(s *Status) {
			s.Rule.Days = 14
			s.Record = index.PolicyRecord{RetentionDays: 14, PrevRetentionDays: 7, RuleChangedAt: now.Add(-time.Hour),
				RetentionSettlesAt: now.Add(47 * time.Hour), Keep: 10}
		}, nil},
		{"retention change not finished", func(s *Status) {
			s.Record = index.PolicyRecord{RetentionDays: 3, PrevRetentionDays: 7, Keep: 10}
		}, []string{"the retention change to 3d is recorded but the bucket's rule is not changed yet"}},
		{"keep raise not finished", func(s *Status) {
			s.Record = index.PolicyRecord{RetentionDays: 7, Keep: 20, PrevKeep: 10, KeepPending: true, KeepChangedAt: now}
		}, []string{"the keep raise to 20 has not completed its renewal pass: traces of ranks 11 to 20 may expire; finish it with `tracegw retention set --keep-per-toplevel 20`"}},
		{"notification lag", func(s *Status) { s.Notify[0].Lag = 2 * time.Hour }, []string{"notifications of bucket traces lag 2h0m0s behind"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := healthy
			s.Notify = append([]index.NotifyProgress(nil), healthy.Notify...)
			tc.edit(&s)
			got := s.Warnings(o)
			if len(got) != len(tc.want) {
				t.Fatalf("warnings = %q, want %d", got, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("warning %d = %q, want it to contain %q", i, got[i], w)
				}
			}
			var b strings.Builder
			if n := s.Write(&b, o); n != len(tc.want) || strings.Count(b.String(), "\nWARN ") != n {
				t.Errorf("Write reported %d warnings:\n%s", n, b.String())
			}
		})
	}
}

func TestStatusWrite(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	s := Status{
		Now: now, Rule: Rule{Days: 14, Found: true}, HaveRecord: true,
		Record: index.PolicyRecord{RetentionDays: 14, PrevRetentionDays: 7, RuleChangedAt: now.Add(-time.Hour),
			RetentionSettlesAt: now.Add(47 * time.Hour), Keep: 10, UpdatedAt: now.Add(-time.Hour)},
		Tables: []index.TableSize{{Table: "traces", Rows: 1234, Bytes: 3 << 20}, {Table: "jobs", Rows: -1, Bytes: 8192}},
	}
	var b strings.Builder
	s.Write(&b, StatusOptions{Margin: 2 * Day, Interval: time.Hour})
	for _, want := range []string{
		"last pass         none recorded",
		"schedule          every 1h0m0s, renew margin 2d",
		"bucket rule       Delete at daysSinceCustomTime >= 14 (14d)",
		"recorded          retention 14d, keep 10 per toplevel",
		"retention change  7d → 14d in progress: GCS may apply the old rule until 2026-11-22T11:00:00Z (in 47h0m0s); GC renews against 7d until then and 14d after",
		"notifications:\n  none applied yet",
		"traces                                 1234      3.0 MiB",
		"jobs                                      ?      8.0 KiB",
		"WARN no GC pass recorded",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, b.String())
		}
	}
}
