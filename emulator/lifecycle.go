package emulator

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"
)

// lifecycleRule is one rule of a bucket's lifecycle configuration, in the
// JSON API's shape.
type lifecycleRule struct {
	Action struct {
		Type         string `json:"type"`
		StorageClass string `json:"storageClass,omitempty"`
	} `json:"action"`
	Condition lifecycleCondition `json:"condition"`
}

type lifecycleCondition struct {
	Age                     *int64   `json:"age,omitempty"`
	CreatedBefore           string   `json:"createdBefore,omitempty"`
	CustomTimeBefore        string   `json:"customTimeBefore,omitempty"`
	DaysSinceCustomTime     *int64   `json:"daysSinceCustomTime,omitempty"`
	DaysSinceNoncurrentTime *int64   `json:"daysSinceNoncurrentTime,omitempty"`
	NoncurrentTimeBefore    string   `json:"noncurrentTimeBefore,omitempty"`
	NumNewerVersions        *int64   `json:"numNewerVersions,omitempty"`
	IsLive                  *bool    `json:"isLive,omitempty"`
	MatchesPrefix           []string `json:"matchesPrefix,omitempty"`
	MatchesSuffix           []string `json:"matchesSuffix,omitempty"`
	MatchesStorageClass     []string `json:"matchesStorageClass,omitempty"`
}

const dateLayout = "2006-01-02"

// parseLifecycle decodes and validates a bucket's "lifecycle" field; null
// or an empty rule list means no rules.
func parseLifecycle(raw json.RawMessage) ([]lifecycleRule, error) {
	var lc *struct {
		Rule []lifecycleRule `json:"rule"`
	}
	if err := json.Unmarshal(raw, &lc); err != nil {
		return nil, fmt.Errorf("invalid lifecycle: %w", err)
	}
	if lc == nil {
		return nil, nil
	}
	for i, r := range lc.Rule {
		if r.Action.Type == "" {
			return nil, fmt.Errorf("invalid lifecycle rule %d: action type is required", i)
		}
		c := r.Condition
		for _, d := range []string{c.CreatedBefore, c.CustomTimeBefore, c.NoncurrentTimeBefore} {
			if d == "" {
				continue
			}
			if _, err := time.Parse(dateLayout, d); err != nil {
				return nil, fmt.Errorf("invalid lifecycle rule %d: date %q is not YYYY-MM-DD", i, d)
			}
		}
		if c.Age == nil && c.CreatedBefore == "" && c.CustomTimeBefore == "" && c.DaysSinceCustomTime == nil &&
			c.DaysSinceNoncurrentTime == nil && c.NoncurrentTimeBefore == "" && c.NumNewerVersions == nil &&
			c.IsLive == nil && len(c.MatchesPrefix) == 0 && len(c.MatchesSuffix) == 0 && len(c.MatchesStorageClass) == 0 {
			return nil, fmt.Errorf("invalid lifecycle rule %d: at least one condition is required", i)
		}
	}
	return lc.Rule, nil
}

// lifecycleSubject is what rule conditions look at.
type lifecycleSubject struct {
	name         string
	created      time.Time
	customTime   time.Time
	storageClass string
}

func nDays(n int64) time.Duration { return time.Duration(n) * 24 * time.Hour }

// matches reports whether every condition of c holds for o at now. Objects
// are always live (no versioning), so noncurrent-only conditions never hold.
func (c lifecycleCondition) matches(o lifecycleSubject, now time.Time) bool {
	if c.Age != nil && now.Before(o.created.Add(nDays(*c.Age))) {
		return false
	}
	if c.CreatedBefore != "" {
		d, _ := time.Parse(dateLayout, c.CreatedBefore)
		if !o.created.Before(d) {
			return false
		}
	}
	if c.CustomTimeBefore != "" {
		d, _ := time.Parse(dateLayout, c.CustomTimeBefore)
		if o.customTime.IsZero() || !o.customTime.Before(d) {
			return false
		}
	}
	// No customTime means daysSinceCustomTime never matches.
	if c.DaysSinceCustomTime != nil && (o.customTime.IsZero() || now.Before(o.customTime.Add(nDays(*c.DaysSinceCustomTime)))) {
		return false
	}
	if c.DaysSinceNoncurrentTime != nil || c.NoncurrentTimeBefore != "" {
		return false
	}
	if c.NumNewerVersions != nil && *c.NumNewerVersions > 0 {
		return false
	}
	if c.IsLive != nil && !*c.IsLive {
		return false
	}
	if len(c.MatchesPrefix) > 0 && !slices.ContainsFunc(c.MatchesPrefix, func(p string) bool { return strings.HasPrefix(o.name, p) }) {
		return false
	}
	if len(c.MatchesSuffix) > 0 && !slices.ContainsFunc(c.MatchesSuffix, func(s string) bool { return strings.HasSuffix(o.name, s) }) {
		return false
	}
	sc := o.storageClass
	if sc == "" {
		sc = "STANDARD"
	}
	if len(c.MatchesStorageClass) > 0 && !slices.Contains(c.MatchesStorageClass, sc) {
		return false
	}
	return true
}

// deletes reports whether any Delete rule matches (rules OR together).
func deletes(rules []lifecycleRule, o lifecycleSubject, now time.Time) bool {
	for _, r := range rules {
		if r.Action.Type == "Delete" && r.Condition.matches(o, now) {
			return true
		}
	}
	return false
}

func subjectOf(name string, s *objState) lifecycleSubject {
	return lifecycleSubject{name: name, created: s.Created, customTime: s.CustomTime, storageClass: s.StorageClass}
}

// laggingRules are rules a bucket had, still applied until a time.
type laggingRules struct {
	rules []lifecycleRule
	until time.Time
}

// KeepApplyingRules models GCS's delay in applying a lifecycle change: up
// to 24 h, the old configuration possibly acting meanwhile, while the
// bucket resource already shows the new one. From the call on, the sweep
// goes on applying the rules the bucket has now, in addition to whatever
// rules it is given later, until the emulator's clock reaches until. A
// later call replaces the earlier one; the lag is not persisted. Safe for
// concurrent use.
func (e *Emulator) KeepApplyingRules(bucket string, until time.Time) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var rules []lifecycleRule
	if bs := e.st.Buckets[bucket]; bs != nil {
		rules = bs.rules()
	}
	if e.lagging == nil {
		e.lagging = map[string]laggingRules{}
	}
	e.lagging[bucket] = laggingRules{rules: rules, until: until}
}

// lifecycleWorkers bounds the deletions of a sweep in flight.
const lifecycleWorkers = 16

// ApplyLifecycle runs one lifecycle sweep at the emulator's current time:
// every live, unheld object matching a Delete rule of its bucket is deleted
// and its OBJECT_DELETE published. Held objects are skipped and go on a
// later sweep once released, if they still match. It returns how many
// objects it deleted. Safe for concurrent use; sweeps are serialised.
func (e *Emulator) ApplyLifecycle(ctx context.Context) (int, error) {
	e.sweepMu.Lock()
	defer e.sweepMu.Unlock()
	now := e.Now()
	type candidate struct {
		bucket, name string
		rules        []lifecycleRule
	}
	var cands []candidate
	e.mu.Lock()
	for bname, bs := range e.st.Buckets {
		rules := bs.rules()
		if l, ok := e.lagging[bname]; ok && now.Before(l.until) {
			rules = append(slices.Clone(rules), l.rules...)
		}
		if len(rules) == 0 {
			continue
		}
		for name, s := range e.st.Objects[bname] {
			if !s.TemporaryHold && !s.EventBasedHold && deletes(rules, subjectOf(name, s), now) {
				cands = append(cands, candidate{bname, name, rules})
			}
		}
	}
	e.mu.Unlock()
	slices.SortFunc(cands, func(a, b candidate) int {
		return strings.Compare(a.bucket+"\x00"+a.name, b.bucket+"\x00"+b.name)
	})
	// Deletes go a few at a time: each waits on the filesystem, and a
	// lifecycle run may delete tens of thousands of objects at one step.
	var deletedN atomic.Int64
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(lifecycleWorkers)
	for _, c := range cands {
		g.Go(func() error {
			if err := gctx.Err(); err != nil {
				return err
			}
			ok, err := e.expire(gctx, c.bucket, c.name, c.rules, now)
			if ok {
				deletedN.Add(1)
			}
			return err
		})
	}
	err := g.Wait()
	deleted := int(deletedN.Load())
	if err != nil {
		return deleted, fmt.Errorf("apply lifecycle: %w", err)
	}
	if deleted > 0 {
		// Debug: Advance, which runs the sweeps, logs one summary.
		e.log.Debug("lifecycle sweep done", "count", deleted, "now", now)
	}
	return deleted, nil
}

// expire re-checks one candidate under its lock (a request may have
// renewed, held or replaced it since) and deletes it if it still matches.
func (e *Emulator) expire(ctx context.Context, bucket, name string, rules []lifecycleRule, now time.Time) (bool, error) {
	unlock := e.lockObject(bucket, name)
	defer unlock()
	v, ok := e.current(bucket, name)
	if !ok || v.held() || !deletes(rules, subjectOf(name, &v.st), now) {
		return false, nil
	}
	if err := e.deleteLocked(ctx, v, e.baseURL(nil)); err != nil {
		return false, err
	}
	e.log.Debug("lifecycle delete", "key", name, "generation", v.base.Generation)
	return true, nil
}
