package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/tracegw/tracegw/internal/bench"
)

func runBench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := Load("bench", args, os.Getenv, nil)
	if err != nil {
		return err
	}
	o := bench.Options{Quick: c.Quick, URL: c.BenchURL, Token: c.Token, Seed: c.Seed, ProfileDir: c.ProfileDir,
		Postgres: startBenchPG, Progress: stderr}
	if o.URL == "" {
		// The embedded stack runs this binary as its emulator and gateway.
		if o.Executable, err = os.Executable(); err != nil {
			return fmt.Errorf("find the tracegw executable: %w", err)
		}
	}
	if err := o.Validate(); err != nil {
		return err
	}
	r, err := bench.Run(ctx, o)
	// What was measured is printed even when a later step failed.
	err = errors.Join(err, r.WriteText(stdout))
	if c.JSONOut != "" {
		err = errors.Join(err, writeJSONFile(c.JSONOut, &r))
	}
	return err
}

// startBenchPG starts dev's private PostgreSQL in dir for the bench.
func startBenchPG(ctx context.Context, dir string) (string, func() error, error) {
	pg, url, err := startDevPG(ctx, dir)
	if err != nil {
		return "", nil, err
	}
	return url, pg.Stop, nil
}

func writeJSONFile(path string, r *bench.Report) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = r.WriteJSON(f)
	return errors.Join(err, f.Close())
}
