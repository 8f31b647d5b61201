package notify

import (
	"context"
	"time"

	"github.com/tracegw/tracegw/internal/index"
)

// progressEvery is how often at most the consumer records its progress in
// the index (index.RecordNotifyProgress), where `tracegw status` reads the
// notification lag.
const progressEvery = 5 * time.Second

// progress is what the consumer observed since it last recorded. Only the
// batcher goroutine touches it.
type progress struct {
	recorded time.Time     // when it last recorded (the consumer's clock)
	event    time.Time     // newest eventTime applied since
	lag      time.Duration // largest lag applied since
}

// noteProgress adds a committed batch's newest eventTime and largest lag and
// records them if progressEvery has passed. A failure to record is logged:
// it never holds a batch back.
func (c *Consumer) noteProgress(ctx context.Context, now, event time.Time, lag time.Duration) {
	if c.db == nil || event.IsZero() {
		return
	}
	p := &c.progress
	if event.After(p.event) {
		p.event = event
	}
	p.lag = max(p.lag, lag)
	if !p.recorded.IsZero() && now.Sub(p.recorded) < progressEvery {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	err := c.db.RecordNotifyProgress(ctx, index.NotifyProgress{Bucket: c.bucket, LastEventTime: p.event, Lag: p.lag, RecordedAt: now})
	if err != nil {
		c.log.Warn("record notify progress", "err", err)
		return
	}
	*p = progress{recorded: now}
}
