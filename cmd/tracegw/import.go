package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/internal/importer"
)

// runImport is `tracegw import --url URL --token TOKEN FILE|-`: wiring for
// internal/importer, with a progress bar on a terminal and the summary on
// stdout.
func runImport(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := Load("import", args, os.Getenv, nil)
	if err != nil {
		return err
	}
	if err := c.validateImport(); err != nil {
		return err
	}
	var (
		in   io.Reader = os.Stdin
		size int64     = -1
		opts           = importer.Options{Concurrency: c.Concurrency, Rate: float64(c.Rate), DryRun: c.DryRun, Checkpoint: c.Checkpoint}
	)
	if name := c.Args[0]; name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
		if opts.Input, err = importer.Identify(name); err != nil {
			return err
		}
		size = opts.Input.Size
		if opts.Checkpoint == "" {
			opts.Checkpoint = name + ".checkpoint"
		}
	}
	bar := newBar(stderr, size, "import", true)
	if bar != nil {
		opts.OnProgress = func(p importer.Progress) {
			_ = bar.Set64(p.Offset)
			bar.Describe(fmt.Sprintf("import: %d imported, %d present, %d conflicting, %d invalid",
				p.Counts.Imported, p.Counts.Present, p.Counts.Conflicting, p.Counts.Invalid))
		}
	}
	var saver importer.Saver
	if !c.DryRun {
		cl := client.New(c.BenchURL, c.Token, client.WithConcurrency(c.Concurrency), client.WithUserAgent("tracegw-import/1"),
			client.WithRetry(8, 100*time.Millisecond, 5*time.Second))
		defer cl.Close()
		saver = cl
	}
	sum, err := importer.Run(ctx, in, saver, opts)
	endBar(bar)
	sum.Write(stdout)
	switch {
	case errors.Is(err, importer.ErrInterrupted) && opts.Checkpoint != "":
		return fmt.Errorf("%w: the checkpoint %s records what is done; run the same command again to resume", err, opts.Checkpoint)
	case err != nil && opts.Checkpoint != "" && !c.DryRun && sum.Sent > 0:
		return fmt.Errorf("%w\nthe checkpoint %s records what is done; run the same command again to resume", err, opts.Checkpoint)
	case err != nil:
		return err
	case sum.Conflicting+sum.Invalid > 0:
		return fmt.Errorf("%d lines were not imported (conflicting or invalid; listed above)", sum.Conflicting+sum.Invalid)
	}
	return nil
}

// validateImport reports every problem of import's settings at once.
func (c Config) validateImport() error {
	var errs []error
	if len(c.Args) != 1 {
		errs = append(errs, errors.New("name one input: a file of NDJSON trace documents, or - for standard input"))
	}
	if !c.DryRun {
		if c.BenchURL == "" {
			errs = append(errs, errors.New("--url (TRACEGW_URL) is required: the gateway to import into, e.g. http://127.0.0.1:7070"))
		} else if !strings.HasPrefix(c.BenchURL, "http://") && !strings.HasPrefix(c.BenchURL, "https://") {
			errs = append(errs, fmt.Errorf("--url %q: want an http:// or https:// URL", c.BenchURL))
		}
		if c.Token == "" {
			errs = append(errs, errors.New("--token (TRACEGW_TOKEN) is required: an admin token of the gateway (tracegw dev prints one)"))
		}
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		errs = append(errs, fmt.Errorf("--concurrency %d: want 1 to 256", c.Concurrency))
	}
	if c.Rate < 0 {
		errs = append(errs, fmt.Errorf("--rate %d: want 0 (no limit) or more", c.Rate))
	}
	return errors.Join(errs...)
}
