package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := Load("serve", args, os.Getenv, nil)
	if err != nil {
		return err
	}
	if err := c.validateServe(); err != nil {
		return err
	}
	log := newLogger(stderr, false)
	if err := migrate(ctx, c.DatabaseURL); err != nil {
		return err
	}
	st, err := newStack(ctx, c, log, time.Now, nil)
	if err != nil {
		return err
	}
	defer st.Close()
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", c.Listen, err)
	}
	log.Info("serving", "addr", ln.Addr().String(), "bucket", c.Bucket)
	return serveHTTP(ctx, ln, st.api.Handler(), c.ShutdownTimeout, log)
}

// validateServe reports every configuration problem at once, naming flags.
func (c Config) validateServe() error {
	var errs []error
	if c.DatabaseURL == "" {
		errs = append(errs, errors.New("--database-url (TRACEGW_DATABASE_URL) is required"))
	}
	if c.Bucket == "" {
		errs = append(errs, errors.New("--bucket (TRACEGW_BUCKET) is required"))
	}
	if c.MaxBody < 1024 {
		errs = append(errs, fmt.Errorf("--max-body %d: must be at least 1024", c.MaxBody))
	}
	if c.HoldQuota < 0 {
		errs = append(errs, fmt.Errorf("--hold-quota %d: must not be negative", c.HoldQuota))
	}
	errs = append(errs, c.ValidateRetention())
	return errors.Join(errs...)
}
