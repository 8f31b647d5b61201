package main

import (
	"context"
	"io"
	"iter"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/tracegw/tracegw/internal/traces"
)

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// newBar is a progress bar of total steps (-1: unknown, a spinner) drawn on
// w, or nil when w is not a terminal: logs and pipes get the summary only.
// bytes shows the counts as sizes. Finish or Exit it before printing below.
func newBar(w io.Writer, total int64, what string, bytes bool) *progressbar.ProgressBar {
	if !isTerminal(w) {
		return nil
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(what),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionShowBytes(bytes),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(total > 0),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	)
}

// endBar clears bar from its line (nil: nothing drawn).
func endBar(bar *progressbar.ProgressBar) {
	if bar != nil {
		_ = bar.Exit()
		_ = bar.Clear()
	}
}

// gcProgress is GC's OnProgress drawing bar: due canvases done of total.
func gcProgress(bar *progressbar.ProgressBar) func(done, total int) {
	if bar == nil {
		return nil
	}
	return func(done, total int) {
		bar.ChangeMax(total)
		_ = bar.Set(done)
	}
}

// countingLister counts on bar the objects reconcile lists (the bucket's
// size is not known beforehand, so the bar is a spinner with a count).
type countingLister struct {
	reconcileLister
	bar *progressbar.ProgressBar
}

// reconcileLister is what notify.Reconcile needs from the bucket.
type reconcileLister interface {
	Objects(ctx context.Context, prefix string) iter.Seq2[traces.ObjectInfo, error]
	Stat(ctx context.Context, key string) (traces.ObjectInfo, error)
}

func (l countingLister) Objects(ctx context.Context, prefix string) iter.Seq2[traces.ObjectInfo, error] {
	return func(yield func(traces.ObjectInfo, error) bool) {
		for o, err := range l.reconcileLister.Objects(ctx, prefix) {
			if err == nil {
				_ = l.bar.Add(1)
			}
			if !yield(o, err) {
				return
			}
		}
	}
}

// withBar counts what l lists on a spinner on w, when w is a terminal.
func withBar(l reconcileLister, w io.Writer, what string) (reconcileLister, func()) {
	bar := newBar(w, -1, what, false)
	if bar == nil {
		return l, func() {}
	}
	return countingLister{l, bar}, func() { endBar(bar) }
}
