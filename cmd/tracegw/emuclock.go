package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
)

// emulatorClockPoll is how often serve reads the clock of the emulator at
// --gcs-endpoint: after a POST /_emulator/clock/advance, its clock (and so
// the customTime of new traces and the GC's next pass) follows within this
// long.
const emulatorClockPoll = 50 * time.Millisecond

// emulatorClock is the clock of a tracegw emulator in another process,
// read with GET /_emulator/clock: the last reading plus the local time
// elapsed since, never going backwards. The emulator's clock runs with
// real time and jumps forward on each advance, so Run re-reads it every
// emulatorClockPoll. Safe for concurrent use.
type emulatorClock struct {
	url  string
	http *http.Client
	log  *slog.Logger

	mu   sync.Mutex
	base time.Time // the emulator's time at the last reading
	at   time.Time // the local time (with its monotonic reading) of the last reading
	last time.Time // the latest time Now returned
}

// newEmulatorClock reads the clock of the emulator at endpoint once. ok is
// false when endpoint is not a tracegw emulator (real GCS, or another
// emulator without the route): use the local clock then.
func newEmulatorClock(ctx context.Context, endpoint string, log *slog.Logger) (c *emulatorClock, ok bool) {
	if endpoint == "" {
		return nil, false
	}
	c = &emulatorClock{
		url:  strings.TrimSuffix(endpoint, "/") + "/_emulator/clock",
		http: &http.Client{Timeout: 2 * time.Second},
		log:  log,
	}
	if err := c.read(ctx); err != nil {
		return nil, false
	}
	return c, true
}

// emulatorClockFor is the clock of the tracegw emulator at --gcs-endpoint,
// or nil when there is none (real GCS): serve and gc then use the local
// clock. It says which in the log.
func emulatorClockFor(ctx context.Context, c Config, log *slog.Logger) *emulatorClock {
	clock, ok := newEmulatorClock(ctx, gcsEndpoint(c), log)
	if !ok {
		return nil
	}
	log.Info("on the emulator's clock: customTime, GC passes and notification lag follow it", "now", clock.Now(), "poll", emulatorClockPoll)
	return clock
}

// clockOf returns the clock of the emulator at --gcs-endpoint with its
// poller running, or the local clock when there is none; stop ends the
// poller (call it before returning). For commands without an errgroup of
// their own (gc, notify).
func clockOf(ctx context.Context, c Config, log *slog.Logger) (now func() time.Time, clock *emulatorClock, stop func()) {
	clock = emulatorClockFor(ctx, c, log)
	if clock == nil {
		return time.Now, nil, func() {}
	}
	cctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { _ = clock.Run(cctx) })
	return clock.Now, clock, func() { cancel(); wg.Wait() }
}

// read takes one reading.
func (c *emulatorClock) read(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url, nil)
	if err != nil {
		return err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var body struct {
		Now time.Time `json:"now"`
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", c.url, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Now.IsZero() {
		return fmt.Errorf("GET %s: no time in the answer (%v)", c.url, err)
	}
	at := time.Now()
	c.mu.Lock()
	c.base, c.at = body.Now, at
	c.mu.Unlock()
	return nil
}

// Now is the emulator's time as of the last reading.
func (c *emulatorClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.base.Add(time.Since(c.at))
	if t.Before(c.last) {
		t = c.last // a slower answer must not move the clock back
	}
	c.last = t
	return t.UTC()
}

// Run re-reads the clock every emulatorClockPoll until ctx ends, and
// returns nil then. A failed reading is logged once per outage; the clock
// keeps running from the last one meanwhile.
func (c *emulatorClock) Run(ctx context.Context) error {
	t := time.NewTicker(emulatorClockPoll)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		err := c.read(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			c.log.Warn("emulator clock unreadable; running on from the last reading", "err", err)
			failing = true
		case err == nil && failing:
			c.log.Info("emulator clock readable again")
			failing = false
		}
	}
}

// Wait blocks until Now reads until or later, or ctx ends (then it returns
// ctx's error): the GC's pacing on the emulator's clock (ttl.Options.Wait).
func (c *emulatorClock) Wait(ctx context.Context, until time.Time) error {
	t := time.NewTicker(emulatorClockPoll)
	defer t.Stop()
	for c.Now().Before(until) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// clockFor is a one-off reading of the clock of the emulator at endpoint
// for commands that run briefly (status, retention): its time with the
// local time elapsed since, and a note for their output; the local clock
// and no note when endpoint is not a tracegw emulator.
func clockFor(ctx context.Context, endpoint string) (now func() time.Time, note string) {
	c, ok := newEmulatorClock(ctx, endpoint, slog.New(slog.DiscardHandler))
	if !ok {
		return time.Now, ""
	}
	return c.Now, " (the emulator's clock)"
}
