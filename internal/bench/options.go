package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"
)

// Options configure Run. Each field is a flag of `tracegw bench`, whose
// name Validate's errors use.
type Options struct {
	// Quick runs every cell shorter: the whole bench in under 2 minutes.
	Quick bool
	// URL, when set, is a running gateway on loopback whose saves and
	// reads are measured instead of an embedded stack's; Token is its
	// bearer token (admin, or executor and editor rights).
	URL, Token string
	// Seed seeds the generated payloads.
	Seed uint64
	// ProfileDir, when set, receives CPU profiles of the embedded gateway
	// taken during the 16 KiB c=1 and c=64 saves of each storage
	// (gateway-{storage}-16k-c{N}.pprof).
	ProfileDir string

	// Executable is the tracegw binary that the embedded stack runs as
	// child processes (`tracegw emulator`, `tracegw serve`), so their CPU
	// time and memory are their own. Required without URL.
	Executable string
	// Postgres starts a private PostgreSQL server keeping its data under
	// dir and returns its URL and a func that stops it. Required without
	// URL.
	Postgres func(ctx context.Context, dir string) (url string, stop func() error, err error)
	// Progress receives a line per step ("bench: …"); nil discards them.
	Progress io.Writer
}

// Validate reports every problem of o at once.
func (o Options) Validate() error {
	var errs []error
	if o.URL != "" {
		if err := loopbackURL(o.URL); err != nil {
			errs = append(errs, fmt.Errorf("--url %s: %w", o.URL, err))
		}
	} else {
		if o.Executable == "" {
			errs = append(errs, errors.New("the embedded stack needs the tracegw executable (Options.Executable)"))
		}
		if o.Postgres == nil {
			errs = append(errs, errors.New("the embedded stack needs a way to start PostgreSQL (Options.Postgres)"))
		}
	}
	return errors.Join(errs...)
}

// loopbackURL checks that u is an http(s) URL of a loopback host: the bench
// never loads anything but this machine.
func loopbackURL(u string) error {
	p, err := url.Parse(u)
	if err != nil {
		return err
	}
	if p.Scheme != "http" && p.Scheme != "https" {
		return errors.New("must be an http or https URL")
	}
	if ip := net.ParseIP(p.Hostname()); p.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return errors.New("the bench only talks to loopback")
	}
	return nil
}

// plan is how long each part runs: quick or full.
type plan struct {
	saves, reads, gcSaves, large bounds
	notifyMsgs, emuMsgs, applyN  int
	notifyWindow                 time.Duration
}

var (
	quickPlan = plan{
		saves: bounds{3_000, 800 * time.Millisecond}, reads: bounds{2_000, time.Second}, large: bounds{16, 2 * time.Second},
		gcSaves: bounds{4_000, 1500 * time.Millisecond}, notifyMsgs: 20_000, emuMsgs: 4_000, applyN: 20_000, notifyWindow: 8 * time.Second,
	}
	fullPlan = plan{
		saves: bounds{40_000, 4 * time.Second}, reads: bounds{20_000, 6 * time.Second}, large: bounds{200, 6 * time.Second},
		gcSaves: bounds{40_000, 8 * time.Second}, notifyMsgs: 100_000, emuMsgs: 20_000, applyN: 100_000, notifyWindow: 30 * time.Second,
	}
)

// The saves table's rows: every size at every concurrency.
var (
	saveSizes = []int{2, 16, 256} // KiB
	saveConcs = []int{1, 16, 64}
)
