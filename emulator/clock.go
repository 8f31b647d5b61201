package emulator

import (
	"context"
	"fmt"
	"time"
)

// Summary is the result of Advance; it marshals as
// {"now","renewed","deleted","notificationsConsumed"} and, when the last
// two differ, "note" saying why.
//
// Deleted counts the objects the lifecycle rules deleted during this
// advance. NotificationsConsumed counts every deletion notification the
// Drain hook saw handled since the previous advance returned: the
// lifecycle's, and those of deletions made meanwhile through the API
// (deletes, and overwrites, which publish a delete of the old generation)
// or by whoever consumes them (deleting further objects). A deletion no
// notification config matches publishes nothing.
type Summary struct {
	Now                   time.Time `json:"now"`
	Renewed               int       `json:"renewed"`
	Deleted               int       `json:"deleted"`
	NotificationsConsumed int       `json:"notificationsConsumed"`
	Note                  string    `json:"note,omitempty"`
}

// note explains a Summary whose counts differ ("" when they agree or
// nothing consumes notifications).
func (s Summary) note(drained bool) string {
	switch {
	case !drained || s.NotificationsConsumed == s.Deleted:
		return ""
	case s.NotificationsConsumed > s.Deleted:
		return fmt.Sprintf("notificationsConsumed counts every deletion notification handled since the previous advance, "+
			"not only the %d lifecycle deletions of this one: the other %d came from objects deleted or overwritten meanwhile "+
			"(an overwrite publishes the deletion of the old generation), or deleted while notifications were handled",
			s.Deleted, s.NotificationsConsumed-s.Deleted)
	}
	return fmt.Sprintf("%d of the %d lifecycle deletions published no notification consumed yet "+
		"(no notification config matches them, or publishing failed)", s.Deleted-s.NotificationsConsumed, s.Deleted)
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
	sum.Note = sum.note(hooks.Drain != nil)
	attrs := []any{"duration", d, "now", sum.Now, "renewed", sum.Renewed,
		"deleted", sum.Deleted, "consumed", sum.NotificationsConsumed}
	if sum.Note != "" {
		attrs = append(attrs, "note", sum.Note)
	}
	e.log.Info("clock advanced", attrs...) // the one line of an advance
	return sum, nil
}

func (e *Emulator) moveClock(d time.Duration) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	off := time.Duration(e.offset.Add(int64(d)))
	return e.appendLocked(record{Op: "clock", Offset: off})
}
