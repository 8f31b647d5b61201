package days

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// Day is the day unit: 24 hours, as the bucket lifecycle rule counts
// (daysSinceCustomTime).
const Day = 24 * time.Hour

// Form describes what Parse accepts, for error messages and help texts.
const Form = "a duration such as 90m, 36h, 7d or 1d12h"

// errSyntax is Parse's one error: it says what is expected, and callers add
// which flag or parameter held which value.
var errSyntax = errors.New("want " + Form + " (a day count, then a Go duration; no sign)")

// Parse parses a non-negative duration: an optional leading day count
// (digits with an optional fraction, then "d") followed by an optional Go
// duration as time.ParseDuration reads it ("90m", "1h30m", "1.5h"). So
// "7d", "1d12h", "1.5d", "36h" and "0" parse; "", "d", "-1h", "+1h",
// "12h1d" and "1e3d" do not. Surrounding spaces are ignored. A fractional
// day keeps nanosecond precision for up to 13 digits of fraction.
func Parse(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" || s[0] == '-' || s[0] == '+' {
		return 0, errSyntax
	}
	dayPart, rest, hasDays := strings.Cut(s, "d")
	if !hasDays {
		d, err := time.ParseDuration(s)
		if err != nil {
			return 0, errSyntax
		}
		return d, nil
	}
	d, ok := dayCount(dayPart)
	if !ok {
		return 0, errSyntax
	}
	if rest == "" {
		return d, nil
	}
	if rest[0] == '-' || rest[0] == '+' {
		return 0, errSyntax
	}
	r, err := time.ParseDuration(rest)
	if err != nil || d > maxDuration-r {
		return 0, errSyntax
	}
	return d + r, nil
}

const maxDuration = time.Duration(1<<63 - 1)

// dayCount reads "7", "1.5" or ".5" as days; false if s is anything else
// or too large for a time.Duration.
func dayCount(s string) (time.Duration, bool) {
	whole, frac, _ := strings.Cut(s, ".")
	if whole == "" && frac == "" || !digits(whole) || !digits(frac) {
		return 0, false
	}
	var d time.Duration
	for _, c := range whole {
		n := time.Duration(c - '0')
		if d > (maxDuration-n*Day)/10 {
			return 0, false
		}
		d = d*10 + n*Day
	}
	unit := Day
	for _, c := range frac {
		unit /= 10
		d += time.Duration(c-'0') * unit
	}
	return d, true
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Format renders a positive whole number of days as "7d" and anything else
// as time.Duration.String does ("36h0m0s", "0s"); Parse reads back every
// non-negative result.
func Format(d time.Duration) string {
	if d > 0 && d%Day == 0 {
		return strconv.FormatInt(int64(d/Day), 10) + "d"
	}
	return d.String()
}
