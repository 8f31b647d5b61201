package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tracegw/tracegw/internal/httpapi"
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
	auth, err := serveAuth(ctx, c, log)
	if err != nil {
		return err
	}
	if err := migrate(ctx, c.DatabaseURL); err != nil {
		return err
	}
	now, clock := time.Now, emulatorClockFor(ctx, c, log)
	if clock != nil {
		now = clock.Now
	}
	st, err := newStack(ctx, c, log, now, auth)
	if err != nil {
		return err
	}
	defer st.Close() // after both listeners have drained
	if clock != nil {
		st.gc.SetWait(clock.Wait) // GC passes follow the emulator's clock too
	}
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", c.Listen, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	if clock != nil {
		g.Go(func() error { return clock.Run(gctx) })
	}
	st.checkBucket(ctx, c)
	g.Go(func() error { return st.jobs.Run(gctx) })
	if c.RunGC {
		// Refuse to start on a policy that disagrees with the bucket's
		// rule or the policy record: the operator must fix it first.
		if _, err := st.gc.Check(ctx); err != nil {
			ln.Close()
			return fmt.Errorf("--run-gc: %w", err)
		}
		g.Go(func() error { return st.gc.Run(gctx) })
	}
	if c.RunNotify {
		if err := checkSubscription(ctx, c, log); err != nil {
			ln.Close()
			return err
		}
		cons, err := st.newConsumer(ctx, c)
		if err != nil {
			ln.Close()
			return err
		}
		defer cons.Close()
		g.Go(func() error { return explainConsumer(cons.Run(gctx), c) })
	}
	if c.AdminListen != "" {
		aln, err := net.Listen("tcp", c.AdminListen)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--admin-listen %s: %w", c.AdminListen, err)
		}
		log.Info("admin listener", "addr", aln.Addr().String(), "pprof", c.Pprof)
		g.Go(func() error { return serveHTTP(gctx, aln, st.adminHandler(c.Pprof), c.ShutdownTimeout, log) })
	}
	log.Info("serving", "addr", ln.Addr().String(), "bucket", c.Bucket)
	g.Go(func() error { return serveHTTP(gctx, ln, serveHandler(c, st.api.Handler()), c.ShutdownTimeout, log) })
	return g.Wait()
}

// serveAuth loads the signing key and, with --oidc-audience, the service
// accounts whose Google ID tokens are accepted (Google's keys are fetched
// and cached when first needed). Only with --insecure-no-auth it warns
// loudly and returns nil: every caller is then admin.
func serveAuth(ctx context.Context, c Config, log *slog.Logger) (httpapi.Authenticator, error) {
	if c.SigningKeyFile == "" {
		log.Warn("AUTHENTICATION IS DISABLED (--insecure-no-auth): every caller is admin and may read and delete every canvas's traces; never expose this listener")
		return nil, nil
	}
	key, err := httpapi.LoadKey(c.SigningKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--signing-key-file: %w", err)
	}
	auth := &httpapi.BearerAuth{Key: key}
	if c.OIDCAudience != "" {
		subjects, err := httpapi.LoadSubjects(c.OIDCSubjects)
		if err != nil {
			return nil, fmt.Errorf("--oidc-subjects: %w", err)
		}
		auth.Google = httpapi.NewGoogle(ctx, c.OIDCAudience, subjects, httpapi.GoogleOptions{})
		log.Info("accepting Google ID tokens", "audience", c.OIDCAudience, "count", len(subjects))
	}
	return auth, nil
}

// adminHandler serves /metrics and, with --pprof, /debug/pprof: operator
// routes that never share the API listener when --admin-listen is set.
func (s *stack) adminHandler(withPprof bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", httpapi.MetricsHandler(s.reg))
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	return mux
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
	switch {
	case c.SigningKeyFile == "" && !c.InsecureNoAuth:
		errs = append(errs, errors.New("--signing-key-file (TRACEGW_SIGNING_KEY_FILE) is required: serve refuses to start without a signing key (mint tokens with `tracegw token`); --insecure-no-auth disables authentication for local testing only"))
	case c.SigningKeyFile != "" && c.InsecureNoAuth:
		errs = append(errs, errors.New("--insecure-no-auth and --signing-key-file are both set: choose one"))
	}
	switch {
	case (c.OIDCAudience == "") != (c.OIDCSubjects == ""):
		errs = append(errs, errors.New("--oidc-audience and --oidc-subjects go together: the audience Google ID tokens must carry, and the service accounts they may name"))
	case c.OIDCAudience != "" && c.InsecureNoAuth:
		errs = append(errs, errors.New("--oidc-audience and --insecure-no-auth are both set: choose one"))
	}
	if c.Pprof && c.AdminListen == "" {
		errs = append(errs, errors.New("--pprof needs --admin-listen: pprof is never served on the API listener"))
	}
	if c.AdminListen != "" && c.AdminListen == c.Listen {
		errs = append(errs, fmt.Errorf("--admin-listen %s: must differ from --listen", c.AdminListen))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, fmt.Errorf("--shutdown-timeout %s: must be positive", c.ShutdownTimeout))
	}
	errs = append(errs, c.ValidateRetention())
	return errors.Join(errs...)
}
