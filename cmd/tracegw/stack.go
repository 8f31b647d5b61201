package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"

	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
)

// stack is the gateway wired to its backends; serve and dev both build one.
type stack struct {
	log    *slog.Logger
	now    func() time.Time
	db     *index.DB
	client *storage.Client
	gcs    *objstore.GCS
	svc    *traces.Service
	api    *httpapi.Server
	limits traces.Limits
}

// storageClient connects to GCS, or to an emulator when endpoint is set.
func storageClient(ctx context.Context, endpoint string) (*storage.Client, error) {
	if endpoint == "" {
		return storage.NewClient(ctx)
	}
	return storage.NewClient(ctx,
		option.WithEndpoint(strings.TrimSuffix(endpoint, "/")+"/storage/v1/"),
		option.WithoutAuthentication(), storage.WithJSONReads())
}

func newStack(ctx context.Context, c Config, log *slog.Logger, now func() time.Time, auth httpapi.Authenticator) (*stack, error) {
	db, err := index.Open(ctx, c.DatabaseURL, index.Options{})
	if err != nil {
		return nil, fmt.Errorf("open index: %w", err)
	}
	client, err := storageClient(ctx, c.GCSEndpoint)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("storage client: %w", err)
	}
	s := &stack{log: log, now: now, db: db, client: client, gcs: objstore.New(client, c.Bucket)}
	s.limits = traces.Limits{MaxBody: c.MaxBody}.OrDefault()
	s.svc = traces.NewService(s.gcs, db, now, log.With("component", "traces"))
	s.svc.Limits = s.limits
	s.api = httpapi.New(httpapi.Options{
		Service: s.svc, Auth: auth, Limits: s.limits, Logger: log.With("component", "http"),
		Ready: s.ready,
	})
	return s, nil
}

// ready names every backend that does not answer.
func (s *stack) ready(ctx context.Context) map[string]error {
	failed := map[string]error{}
	if err := s.db.Ping(ctx); err != nil {
		failed["database"] = err
	}
	if _, err := s.client.Bucket(s.gcs.Bucket()).Attrs(ctx); err != nil {
		failed["bucket"] = err
	}
	return failed
}

func (s *stack) Close() {
	_ = s.client.Close()
	s.db.Close()
}

// serveHTTP serves h on ln until ctx ends, then shuts down gracefully:
// stop accepting, let in-flight requests (saves) finish within timeout.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, timeout time.Duration, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: 64 << 10}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down", "addr", ln.Addr().String())
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
