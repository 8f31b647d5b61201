package emulator

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Summary is the result of Advance; it marshals as
// {"now","renewed","deleted","notificationsConsumed"}.
type Summary struct {
	Now                   time.Time `json:"now"`
	Renewed               int       `json:"renewed"`
	Deleted               int       `json:"deleted"`
	NotificationsConsumed int       `json:"notificationsConsumed"`
}

// Now returns the emulator's time: real time plus the offset Advance has
// accumulated. Object times, eventTime and lifecycle ages all use it.
func (e *Emulator) Now() time.Time {
	return e.realNow().Add(time.Duration(e.offset.Load())).UTC()
}

// SetHooks installs the hooks Advance calls. It is separate from New
// because the gateway using them is usually built after the emulator.
func (e *Emulator) SetHooks(h Hooks) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.hooks = h
}

// Advance moves the clock forward by d in steps no longer than
// Options.Step. After each step it calls Hooks.OnStep, then applies the
// lifecycle rules; at the end it calls Hooks.Drain. Advances are
// serialised; requests keep being served meanwhile. Advance(ctx, 0) runs
// one step without moving the clock. On error the clock stays where the
// failing step left it.
func (e *Emulator) Advance(ctx context.Context, d time.Duration) (Summary, error) {
	if d < 0 {
		return Summary{}, fmt.Errorf("advance %s: the clock only moves forward", d)
	}
	e.advanceMu.Lock()
	defer e.advanceMu.Unlock()
	e.mu.Lock()
	hooks := e.hooks
	e.mu.Unlock()
	var sum Summary
	for remaining := d; ; {
		step := min(remaining, e.opts.Step)
		if err := e.moveClock(step); err != nil {
			e.log.Error("record clock", "err", err)
		}
		now := e.Now()
		if hooks.OnStep != nil {
			n, err := hooks.OnStep(ctx, now)
			sum.Renewed += n
			if err != nil {
				sum.Now = e.Now()
				return sum, fmt.Errorf("advance to %s: on step: %w", now.Format(time.RFC3339), err)
			}
		}
		n, err := e.ApplyLifecycle(ctx)
		sum.Deleted += n
		if err != nil {
			sum.Now = e.Now()
			return sum, fmt.Errorf("advance to %s: %w", now.Format(time.RFC3339), err)
		}
		remaining -= step
		if remaining <= 0 {
			break
		}
		if err := ctx.Err(); err != nil {
			sum.Now = e.Now()
			return sum, fmt.Errorf("advance: %w", err)
		}
	}
	if hooks.Drain != nil {
		n, err := hooks.Drain(ctx)
		sum.NotificationsConsumed = n
		if err != nil {
			sum.Now = e.Now()
			return sum, fmt.Errorf("advance: drain: %w", err)
		}
	}
	sum.Now = e.Now()
	e.log.Info("clock advanced", "duration", d, "now", sum.Now, "renewed", sum.Renewed,
		"deleted", sum.Deleted, "consumed", sum.NotificationsConsumed)
	return sum, nil
}

func (e *Emulator) moveClock(d time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	off := time.Duration(e.offset.Add(int64(d)))
	return e.appendLocked(record{Op: "clock", Offset: off})
}

// ParseDuration parses a Go duration with an optional leading day count:
// "72h", "30d", "1d12h", "1.5d".
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	dayPart, rest, hasDays := strings.Cut(s, "d")
	if !hasDays {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseFloat(dayPart, 64)
	if err != nil || n < 0 || dayPart == "" {
		return 0, fmt.Errorf("invalid duration %q", s)
	}
	d := time.Duration(n * float64(24*time.Hour))
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		d += r
	}
	return d, nil
}
