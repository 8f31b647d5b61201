package ttl

import (
	"context"
	"sync"
	"time"

	"github.com/tracegw/tracegw/internal/index"
)

// PolicyCacheTTL is how long CurrentPolicy reuses what it resolved: a
// listing must not cost a bucket GET, and the policy changes only through
// `tracegw retention set`, whose transitions last hours.
const PolicyCacheTTL = time.Minute

// current is CurrentPolicy's cache.
type current struct {
	mu        sync.Mutex
	ok        bool
	at        time.Time // when it was resolved (the GC's clock)
	retention time.Duration
	keep      int
}

func (c *current) set(retention time.Duration, keep int, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ok, c.at, c.retention, c.keep = true, at, retention, keep
}

func (c *current) get() (retention time.Duration, keep int, at time.Time, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.retention, c.keep, c.at, c.ok
}

// CurrentPolicy is the policy GC applies now, as listings describe it
// (why a trace is kept, until when): the retention GCS may apply (the
// strictest during a change) and the global keep-N (a canvas's own keep is
// the index's to read). A managed GC resolves it as a pass does (the
// bucket's rule and the policy record, see Resolve) at most once per
// PolicyCacheTTL, and every pass refreshes it; should they disagree (GC
// then refuses to run) it answers the strictest retention any of them
// names and the recorded keep. If the bucket or the index cannot be read
// it answers what it last resolved, or the configured policy. An unmanaged
// GC answers its configuration. Safe for concurrent use.
func (g *GC) CurrentPolicy(ctx context.Context) (retention time.Duration, keep int) {
	if g.o.Bucket == nil {
		return g.cfg.Retention, g.cfg.Keep
	}
	now := g.now()
	ret, keep, at, ok := g.cur.get()
	if ok && !now.Before(at) && now.Sub(at) < PolicyCacheTTL {
		return ret, keep
	}
	s, err := g.o.Bucket.BucketSettings(ctx)
	if err == nil {
		var rec index.PolicyRecord
		var have bool
		if rec, have, err = g.db.Policy(ctx); err == nil {
			ret, keep = listingPolicy(g.cfg, ReadRule(s), rec, have, now)
			g.cur.set(ret, keep, now)
			return ret, keep
		}
	}
	g.log.Warn("read the retention policy for listings", "err", err)
	if ok {
		return ret, keep
	}
	return g.cfg.Retention, g.cfg.Keep
}

// listingPolicy is the policy listings describe: Resolve's when it
// resolves; otherwise the strictest retention the configuration, the
// record (and, while a change may still apply, its previous value) and the
// rule name, and the recorded keep (the configured one without a record).
func listingPolicy(cfg Policy, rule Rule, rec index.PolicyRecord, have bool, now time.Time) (time.Duration, int) {
	if eff, err := Resolve(cfg, rule, rec, have, now); err == nil {
		return eff.Retention, eff.Keep.Default
	}
	days, keep := cfg.RetentionDays(), cfg.Keep
	if have {
		days, keep = min(days, acceptedRetentions(rec, now)[0]), rec.Keep
	}
	if rule.Found && rule.Days > 0 {
		days = min(days, rule.Days)
	}
	return time.Duration(days) * Day, keep
}
