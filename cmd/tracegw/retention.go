package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/ttl"
)

// runRetention dispatches `tracegw retention set|show`.
func runRetention(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New("want a subcommand: `tracegw retention set --retention 14d [--keep-per-toplevel N]` or `tracegw retention show`")
	}
	switch args[0] {
	case "set":
		return runRetentionSet(ctx, args[1:], stdout, stderr)
	case "show":
		return runRetentionShow(ctx, args[1:], stdout)
	case "-h", "--help", "help":
		return flag.ErrHelp
	}
	return fmt.Errorf("unknown subcommand %q: want set or show", args[0])
}

// runRetentionSet changes retention and/or keep-N safely (ttl.Change) and
// says when the change is complete. Only the flags given (on the command
// line or in the environment) are changed; re-running finishes a change
// that stopped halfway, and `tracegw retention show` polls it.
func runRetentionSet(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := Load("retention set", args, os.Getenv, nil)
	if err != nil {
		return err
	}
	if c.DatabaseURL == "" {
		return errors.New("--database-url (TRACEGW_DATABASE_URL) is required")
	}
	if err := c.ValidateRetention(); err != nil {
		return err
	}
	want := ttl.ChangeRequest{KeepIfNone: c.KeepPerToplevel}
	if c.Given["retention"] {
		want.Retention = time.Duration(c.Retention)
	}
	if c.Given["keep-per-toplevel"] {
		want.Keep = c.KeepPerToplevel
	}
	if want.Retention == 0 && want.Keep == 0 {
		fmt.Fprintln(stdout, "neither --retention nor --keep-per-toplevel given: finishing whatever change is in progress")
	}
	log := newLogger(stderr, true)
	now, clockNote := clockFor(ctx, gcsEndpoint(c))
	st, err := newStack(ctx, c, log, now, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	step := func(line string) { fmt.Fprintf(stdout, "  %s\n", line) }
	if c.DryRun {
		fmt.Fprintln(stdout, "dry run: nothing is changed")
	}
	fmt.Fprintf(stdout, "retention set%s:\n", clockNote)
	rep, err := ttl.Change(ctx, st.objects, st.db, c.policy(), now, log, want, ttl.ChangeOptions{
		DryRun: c.DryRun, Step: step, GC: ttl.Options{Replica: replicaName() + " (retention set)"},
	})
	if err != nil {
		return err
	}
	if c.DryRun {
		return nil
	}
	s, err := ttl.ReadStatus(ctx, st.db, st.objects, now())
	if err != nil {
		return err
	}
	s.WriteRetention(stdout)
	if rep.Complete.After(now()) {
		fmt.Fprintf(stdout, "in progress: complete at %s; run `tracegw retention show` to check\n", rep.Complete.Format(time.RFC3339))
	} else {
		fmt.Fprintln(stdout, "complete")
	}
	return nil
}

// runRetentionShow prints the retention part of the status: the rule as
// read, the recorded policy and any change in progress.
func runRetentionShow(ctx context.Context, args []string, stdout io.Writer) error {
	c, err := Load("retention show", args, os.Getenv, nil)
	if err != nil {
		return err
	}
	s, note, closeAll, err := readStatus(ctx, c)
	if err != nil {
		return err
	}
	defer closeAll()
	fmt.Fprintf(stdout, "at %s%s\n", s.Now.Format(time.RFC3339), note)
	s.WriteRetention(stdout)
	return nil
}

// readStatus opens the index and the bucket and reads the status at the
// right clock (see clockFor). closeAll releases both.
func readStatus(ctx context.Context, c Config) (ttl.Status, string, func(), error) {
	if c.DatabaseURL == "" {
		return ttl.Status{}, "", nil, errors.New("--database-url (TRACEGW_DATABASE_URL) is required")
	}
	db, err := index.Open(ctx, c.DatabaseURL, index.Options{MaxConns: 2})
	if err != nil {
		return ttl.Status{}, "", nil, fmt.Errorf("--database-url: %w", err)
	}
	client, err := storageClient(ctx, gcsEndpoint(c))
	if err != nil {
		db.Close()
		return ttl.Status{}, "", nil, fmt.Errorf("storage client: %w", err)
	}
	closeAll := func() { _ = client.Close(); db.Close() }
	now, note := clockFor(ctx, gcsEndpoint(c))
	s, err := ttl.ReadStatus(ctx, db, objstore.New(client, c.Bucket), now())
	if err != nil {
		closeAll()
		return s, note, nil, err
	}
	return s, note, closeAll, nil
}
