package days_test

import (
	"math"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/days"
)

// durationInputs is the one table of accepted and refused durations.
var durationInputs = []struct {
	in   string
	want time.Duration
	ok   bool
}{
	{"7d", 7 * days.Day, true},
	{"30d", 30 * days.Day, true},
	{"1d12h", 36 * time.Hour, true},
	{"1d0h", days.Day, true},
	{"1.5d", 36 * time.Hour, true},
	{".5d", 12 * time.Hour, true},
	{"2.d", 2 * days.Day, true},
	{"0.1d", 144 * time.Minute, true},
	{"0d", 0, true},
	{"0", 0, true},
	{"90m", 90 * time.Minute, true},
	{"36h", 36 * time.Hour, true},
	{"1h30m", 90 * time.Minute, true},
	{"1.5h", 90 * time.Minute, true},
	{"1d1h30m15s", days.Day + 90*time.Minute + 15*time.Second, true},
	{" 7d ", 7 * days.Day, true},
	{"106751d", 106751 * days.Day, true},
	{"", 0, false},
	{" ", 0, false},
	{"d", 0, false},
	{".d", 0, false},
	{"7", 0, false},
	{"-1d", 0, false},
	{"-1h", 0, false},
	{"+1h", 0, false},
	{"1d-1h", 0, false},
	{"1d+1h", 0, false},
	{"1dx", 0, false},
	{"1d1d", 0, false},
	{"12h1d", 0, false},
	{"1e3d", 0, false},
	{"1,5d", 0, false},
	{"7 d", 0, false},
	{"abc", 0, false},
	{"soon", 0, false},
	{"106752d", 0, false},
	{"106751d24h", 0, false},
	{"99999999999999999999d", 0, false},
}

func TestParseTable(t *testing.T) {
	t.Parallel()
	for _, tc := range durationInputs {
		got, err := days.Parse(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("Parse(%q) = %s, %v; want %s, ok %v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func TestParseErrorSaysWhatIsExpected(t *testing.T) {
	t.Parallel()
	_, err := days.Parse("1x")
	if err == nil || err.Error() != "want "+days.Form+" (a day count, then a Go duration; no sign)" {
		t.Errorf("Parse(1x) error = %v, want it to give the expected form", err)
	}
}

func TestFormat(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		7 * days.Day:   "7d",
		days.Day:       "1d",
		36 * time.Hour: "36h0m0s",
		time.Hour:      "1h0m0s",
		0:              "0s",
		-days.Day:      "-24h0m0s",
		time.Duration(math.MaxInt64 / int64(days.Day) * int64(days.Day)): "106751d",
	} {
		if got := days.Format(d); got != want {
			t.Errorf("Format(%d) = %q, want %q", d, got, want)
		}
		if d >= 0 {
			if back, err := days.Parse(days.Format(d)); err != nil || back != d {
				t.Errorf("Parse(Format(%s)) = %s, %v", d, back, err)
			}
		}
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := days.Parse("1d12h"); err != nil {
			b.Fatal(err)
		}
	}
}
