package emulator

import (
	"strings"
	"testing"
)

// The advance summary explains notificationsConsumed when it differs from
// deleted, and stays quiet when they agree or nothing drains.
func TestSummaryNote(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name              string
		deleted, consumed int
		drained           bool
		wants             []string
	}{
		{"equal", 41, 41, true, nil},
		{"no consumer", 8, 0, false, nil},
		{"more consumed", 8, 11, true, []string{"since the previous advance", "not only the 8 lifecycle deletions", "the other 3", "overwritten"}},
		{"fewer consumed", 8, 5, true, []string{"3 of the 8 lifecycle deletions", "no notification config"}},
	} {
		got := Summary{Deleted: tc.deleted, NotificationsConsumed: tc.consumed}.note(tc.drained)
		if (got == "") != (len(tc.wants) == 0) {
			t.Errorf("%s: note %q", tc.name, got)
		}
		for _, w := range tc.wants {
			if !strings.Contains(got, w) {
				t.Errorf("%s: note %q lacks %q", tc.name, got, w)
			}
		}
	}
}
