package emulator

import (
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

// The lifecycle decision, per condition, as a pure function of the object
// and the time (GCS's conditions; see TestLifecycleConditions).
func TestLifecycleConditionMatches(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	obj := lifecycleSubject{name: "traces/a.json", created: now.Add(-3 * day), customTime: now.Add(-5 * day), storageClass: "STANDARD"}
	noCT := obj
	noCT.customTime = time.Time{}
	tests := []struct {
		name string
		c    lifecycleCondition
		o    lifecycleSubject
		want bool
	}{
		{"age 0 matches all", lifecycleCondition{Age: ptr[int64](0)}, obj, true},
		{"age 3 at exactly 3 days", lifecycleCondition{Age: ptr[int64](3)}, obj, true},
		{"age 4 not yet", lifecycleCondition{Age: ptr[int64](4)}, obj, false},
		{"daysSinceCustomTime 5", lifecycleCondition{DaysSinceCustomTime: ptr[int64](5)}, obj, true},
		{"daysSinceCustomTime 6", lifecycleCondition{DaysSinceCustomTime: ptr[int64](6)}, obj, false},
		{"daysSinceCustomTime without customTime never", lifecycleCondition{DaysSinceCustomTime: ptr[int64](0)}, noCT, false},
		{"customTimeBefore later date", lifecycleCondition{CustomTimeBefore: "2026-11-18"}, obj, true},
		{"customTimeBefore same date", lifecycleCondition{CustomTimeBefore: "2026-11-17"}, obj, false},
		{"customTimeBefore without customTime", lifecycleCondition{CustomTimeBefore: "2030-01-01"}, noCT, false},
		{"createdBefore next day", lifecycleCondition{CreatedBefore: "2026-11-20"}, obj, true},
		{"createdBefore creation day", lifecycleCondition{CreatedBefore: "2026-11-19"}, obj, false},
		{"prefix any of", lifecycleCondition{MatchesPrefix: []string{"logs/", "traces/"}}, obj, true},
		{"prefix none", lifecycleCondition{MatchesPrefix: []string{"logs/"}}, obj, false},
		{"suffix", lifecycleCondition{MatchesSuffix: []string{".json"}}, obj, true},
		{"suffix no wildcards", lifecycleCondition{MatchesSuffix: []string{"*.json"}}, obj, false},
		{"AND: prefix and age both hold", lifecycleCondition{Age: ptr[int64](1), MatchesPrefix: []string{"traces/"}}, obj, true},
		{"AND: one fails", lifecycleCondition{Age: ptr[int64](10), MatchesPrefix: []string{"traces/"}}, obj, false},
		{"storage class", lifecycleCondition{Age: ptr[int64](0), MatchesStorageClass: []string{"NEARLINE"}}, obj, false},
		{"noncurrent only never for live objects", lifecycleCondition{DaysSinceNoncurrentTime: ptr[int64](0)}, obj, false},
		{"isLive true", lifecycleCondition{IsLive: ptr(true)}, obj, true},
		{"isLive false", lifecycleCondition{IsLive: ptr(false)}, obj, false},
	}
	for _, tc := range tests {
		if got := tc.c.matches(tc.o, now); got != tc.want {
			t.Errorf("%s: matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestFinalChunk(t *testing.T) {
	t.Parallel()
	tests := map[string]bool{
		"":                           true,
		"bytes 0-262143/*":           false,
		"bytes */655360":             true,
		"bytes 524288-655359/655360": true,
		"bytes 0-99/200":             false,
		"bytes */*":                  true,
	}
	for cr, want := range tests {
		if got := finalChunk(cr); got != want {
			t.Errorf("finalChunk(%q) = %v, want %v", cr, got, want)
		}
	}
}
