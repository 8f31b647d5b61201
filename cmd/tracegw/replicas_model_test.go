package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tracegw/tracegw/client"
)

// The load generator of TestReplicas and the model of what it sent: which
// traces exist, which toplevels each touches (for sure, or perhaps: an
// operation whose answer was lost may or may not have happened), which are
// held, and when each last had its customTime set by the gateway.

// modelTrace is what the load generator knows about one trace. Only its
// owner (one worker) changes it while the load runs.
type modelTrace struct {
	canvas client.CanvasID
	id     client.TraceID
	acked  bool // a save was acknowledged (2xx)
	// sure are the toplevels it certainly touches; maybe those it touches
	// if an operation whose answer was lost happened.
	sure, maybe map[client.TLID]bool
	root        client.TLID // the root of the last acknowledged document
	rootSure    bool        // no replace whose answer was lost since
	held        tri
	// setAt is an upper bound of the emulator time at which the gateway
	// last set its customTime (save, replace, release).
	setAt time.Time
	// uncertain is set when any operation on it lost its answer.
	uncertain bool
}

// tri is a three-valued state.
type tri int

const (
	no tri = iota
	maybe
	yes
)

func (m *modelTrace) touches(t client.TLID) bool { return m.sure[t] || m.maybe[t] }

// loadConfig shapes the load.
type loadConfig struct {
	canvases []client.CanvasID
	tlids    []client.TLID // the same toplevel IDs in every canvas
	workers  int
	ops      int // per worker
	seed     uint64
}

// loadStats counts what the load did.
type loadStats struct {
	ops, savesAcked, savesLost, replaces, layers, holds, releases, lost, failovers atomic.Int64
}

// loader drives the gateways through the Go client, one client per
// replica. Idempotent calls (save, hold, release) that fail with a network
// error or a 5xx go to the next replica, as a load balancer would send
// them; the others (replace, layer) are not repeated and, on such a
// failure, leave their effect uncertain.
type loader struct {
	cfg     loadConfig
	clients []*client.Client
	now     func() time.Time // the emulator's time as the test last read it
	step    time.Duration    // how far the gateways' clocks may lag it
	stats   loadStats
	mu      sync.Mutex
	traces  []*modelTrace
	// progress is called after every operation with the number done.
	progress func(done int64)
}

// retryable reports whether an idempotent call may go to another replica.
func retryable(err error) bool {
	return errors.Is(err, client.ErrUnavailable) || errors.Is(err, client.ErrInternal) || errors.Is(err, client.ErrExhausted)
}

// anyReplica runs f against the replicas in turn, starting at first, until
// it succeeds, fails for good (a 4xx), or every replica failed twice.
func (l *loader) anyReplica(first int, f func(c *client.Client) error) error {
	var err error
	for i := range 2 * len(l.clients) {
		if err = f(l.clients[(first+i)%len(l.clients)]); err == nil || !retryable(err) {
			return err
		}
		l.stats.failovers.Add(1)
	}
	return err
}

// notSent runs f against the replicas in turn, starting at first, while
// the connection is refused: such a request never reached a gateway, so
// even a call that must not be repeated may go elsewhere.
func (l *loader) notSent(first int, f func(c *client.Client) error) error {
	var err error
	for i := range len(l.clients) {
		if err = f(l.clients[(first+i)%len(l.clients)]); !errors.Is(err, syscall.ECONNREFUSED) {
			return err
		}
		l.stats.failovers.Add(1)
	}
	return err
}

// run runs every worker to completion. Errors are protocol violations
// (a 4xx the load never provokes); lost answers are not errors.
func (l *loader) run(ctx context.Context) error {
	errs := make(chan error, l.cfg.workers)
	var wg sync.WaitGroup
	for w := range l.cfg.workers {
		wg.Go(func() { errs <- l.worker(ctx, w) })
	}
	wg.Wait()
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(all...)
}

func (l *loader) worker(ctx context.Context, w int) error {
	rng := rand.New(rand.NewPCG(l.cfg.seed, uint64(w)))
	var mine []*modelTrace
	for i := range l.cfg.ops {
		if err := ctx.Err(); err != nil {
			return err
		}
		replica := (w + i) % len(l.clients)
		var err error
		switch r := rng.IntN(100); {
		case r < 55 || len(mine) == 0:
			var m *modelTrace
			m, err = l.save(ctx, rng, replica)
			if m != nil {
				mine = append(mine, m)
			}
		case r < 65:
			err = l.replace(ctx, rng, replica, pick(rng, mine, func(m *modelTrace) bool { return m.acked && m.held == no }))
		case r < 80:
			err = l.layer(ctx, rng, replica, pick(rng, mine, func(m *modelTrace) bool { return m.acked }))
		case r < 92:
			err = l.hold(ctx, replica, pick(rng, mine, func(m *modelTrace) bool { return m.acked && m.held == no }))
		default:
			err = l.release(ctx, replica, pick(rng, mine, func(m *modelTrace) bool { return m.acked && m.held == yes }))
		}
		if err != nil {
			return fmt.Errorf("worker %d op %d: %w", w, i, err)
		}
		if l.progress != nil {
			l.progress(l.stats.ops.Add(1))
		}
	}
	return nil
}

// pick returns a random trace of mine that ok accepts, or nil.
func pick(rng *rand.Rand, mine []*modelTrace, ok func(*modelTrace) bool) *modelTrace {
	for range 8 {
		if m := mine[rng.IntN(len(mine))]; ok(m) {
			return m
		}
	}
	return nil
}

// doc makes a document touching a random root and perhaps one more tlid.
func (l *loader) doc(rng *rand.Rand) (*client.Trace, []client.TLID) {
	root := l.cfg.tlids[rng.IntN(len(l.cfg.tlids))]
	t := &client.Trace{RootTLID: root, Timestamp: l.now(),
		Input: []client.InputVar{{Name: "request", Value: client.MustValue(map[string]any{"n": rng.Int64()})}}}
	touched := []client.TLID{root}
	if rng.IntN(3) == 0 {
		other := l.cfg.tlids[rng.IntN(len(l.cfg.tlids))]
		t.TLIDs = []client.TLID{other}
		touched = append(touched, other)
	}
	return t, touched
}

// setBound is the latest emulator time a gateway may have stamped now.
func (l *loader) setBound() time.Time { return l.now().Add(l.step + time.Minute) }

func set(ts ...client.TLID) map[client.TLID]bool {
	m := map[client.TLID]bool{}
	for _, t := range ts {
		m[t] = true
	}
	return m
}

func (l *loader) save(ctx context.Context, rng *rand.Rand, replica int) (*modelTrace, error) {
	canvas := l.cfg.canvases[rng.IntN(len(l.cfg.canvases))]
	t, touched := l.doc(rng)
	t.ID = client.NewTraceID(t.Timestamp) // fixed before the first try: every try sends the same document
	m := &modelTrace{canvas: canvas, id: t.ID, sure: map[client.TLID]bool{}, maybe: set(touched...), root: t.RootTLID}
	l.mu.Lock()
	l.traces = append(l.traces, m)
	l.mu.Unlock()
	err := l.anyReplica(replica, func(c *client.Client) error { _, err := c.Save(ctx, canvas, t); return err })
	switch {
	case err == nil:
		m.acked, m.sure, m.maybe, m.rootSure, m.setAt = true, set(touched...), map[client.TLID]bool{}, true, l.setBound()
		l.stats.savesAcked.Add(1)
		return m, nil
	case retryable(err):
		m.uncertain, m.setAt = true, l.setBound()
		l.stats.savesLost.Add(1)
		return nil, nil // never acknowledged: it may or may not exist
	}
	return nil, err
}

func (l *loader) replace(ctx context.Context, rng *rand.Rand, replica int, m *modelTrace) error {
	if m == nil {
		return nil
	}
	t, touched := l.doc(rng)
	t.Timestamp = m.id.Time() // the same execution's trace: its ID's time
	err := l.notSent(replica, func(c *client.Client) error { _, err := c.Replace(ctx, m.canvas, m.id, t, 0); return err })
	l.stats.replaces.Add(1)
	switch {
	case err == nil:
		// The layers went with the old document: exactly the new tlids.
		m.sure, m.maybe, m.root, m.rootSure, m.setAt = set(touched...), map[client.TLID]bool{}, t.RootTLID, true, l.setBound()
		return nil
	case retryable(err):
		l.stats.lost.Add(1)
		newSet := set(touched...)
		for tl := range m.sure {
			if !newSet[tl] {
				m.maybe[tl] = true
				delete(m.sure, tl)
			}
		}
		for tl := range newSet {
			if !m.sure[tl] {
				m.maybe[tl] = true
			}
		}
		m.rootSure, m.uncertain, m.setAt = false, true, l.setBound()
		return nil
	}
	return err
}

func (l *loader) layer(ctx context.Context, rng *rand.Rand, replica int, m *modelTrace) error {
	if m == nil {
		return nil
	}
	tl := l.cfg.tlids[rng.IntN(len(l.cfg.tlids))]
	results := []client.FunctionResult{{TLID: tl, ExprID: rng.Uint64N(1000), FnName: "Http.get", ArgHash: "a1", Value: client.MustValue(rng.Int64())}}
	err := l.notSent(replica, func(c *client.Client) error {
		_, err := c.AddFunctionResults(ctx, m.canvas, m.id, []client.TLID{tl}, results)
		return err
	})
	l.stats.layers.Add(1)
	switch {
	case err == nil:
		m.sure[tl] = true
		delete(m.maybe, tl)
		return nil
	case retryable(err):
		l.stats.lost.Add(1)
		if !m.sure[tl] {
			m.maybe[tl] = true
		}
		m.uncertain = true
		return nil
	}
	return err
}

func (l *loader) hold(ctx context.Context, replica int, m *modelTrace) error {
	if m == nil {
		return nil
	}
	err := l.anyReplica(replica, func(c *client.Client) error { _, err := c.Hold(ctx, m.canvas, m.id, "replicas test"); return err })
	l.stats.holds.Add(1)
	switch {
	case err == nil:
		m.held = yes
		return nil
	case retryable(err):
		l.stats.lost.Add(1)
		m.held, m.uncertain = maybe, true
		return nil
	}
	return err
}

func (l *loader) release(ctx context.Context, replica int, m *modelTrace) error {
	if m == nil {
		return nil
	}
	err := l.anyReplica(replica, func(c *client.Client) error { return c.Release(ctx, m.canvas, m.id) })
	l.stats.releases.Add(1)
	switch {
	case err == nil:
		m.held, m.setAt = no, l.setBound() // a fresh retention period from now
		return nil
	case retryable(err):
		l.stats.lost.Add(1)
		m.held, m.uncertain, m.setAt = maybe, true, l.setBound()
		return nil
	}
	return err
}

// verdict is what the model says of a trace once the load is over.
type verdict int

const (
	mayGo    verdict = iota // no claim either way
	mustLive                // a keeper or held: readable and listed
	mustGo                  // neither, and its retention is over
)

// keep is the model's keep-N (the gateway's --keep-per-toplevel).
const keep = 10

// judge decides every acknowledged trace at emulator time end, for
// retention ret: a trace is a keeper of a toplevel if fewer than keep
// traces that perhaps touch it are newer (trace IDs sort by time), and
// perhaps a keeper if fewer than keep traces that surely touch it are.
// It also returns, per canvas and toplevel, the traces listed for it when
// the toplevel carries no uncertainty (else nil).
func judge(all []*modelTrace, end time.Time, ret time.Duration) (map[*modelTrace]verdict, map[client.CanvasID]map[client.TLID][]client.TraceID) {
	type key struct {
		c client.CanvasID
		t client.TLID
	}
	by := map[key][]*modelTrace{}
	for _, m := range all {
		for t := range m.sure {
			by[key{m.canvas, t}] = append(by[key{m.canvas, t}], m)
		}
		for t := range m.maybe {
			by[key{m.canvas, t}] = append(by[key{m.canvas, t}], m)
		}
	}
	sureKeeper, maybeKeeper := map[*modelTrace]bool{}, map[*modelTrace]bool{}
	listed := map[client.CanvasID]map[client.TLID][]client.TraceID{}
	for k, ms := range by {
		slices.SortFunc(ms, func(a, b *modelTrace) int { return cmp.Compare(b.id, a.id) })
		newerPerhaps, newerSurely := 0, 0
		exact := true
		var top []client.TraceID
		for _, m := range ms {
			surely := m.sure[k.t] && m.acked
			if surely && newerPerhaps < keep {
				sureKeeper[m] = true
			}
			if newerSurely < keep {
				maybeKeeper[m] = true
			}
			switch {
			case len(top) == keep: // older than the listed ones: no matter
			case !surely:
				exact = false // perhaps listed, perhaps not
			default:
				top = append(top, m.id)
			}
			newerPerhaps++
			if surely {
				newerSurely++
			}
		}
		if listed[k.c] == nil {
			listed[k.c] = map[client.TLID][]client.TraceID{}
		}
		if exact {
			listed[k.c][k.t] = top
		}
	}
	out := map[*modelTrace]verdict{}
	for _, m := range all {
		switch {
		case !m.acked:
		case m.held == yes || sureKeeper[m]:
			out[m] = mustLive
		case m.held == no && !m.uncertain && !maybeKeeper[m] && m.setAt.Before(end.Add(-ret-24*time.Hour)):
			out[m] = mustGo
		}
	}
	return out, listed
}

// sortedTLIDs returns the keys of m in order.
func sortedTLIDs(m map[client.TLID][]client.TraceID) []client.TLID {
	return slices.Sorted(maps.Keys(m))
}
