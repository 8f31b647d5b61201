package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/api/option"

	"github.com/tracegw/tracegw/internal/canvases"
	"github.com/tracegw/tracegw/internal/holds"
	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
	"github.com/tracegw/tracegw/internal/ttl"
)

// stack is the gateway wired to its backends; serve and dev both build one.
type stack struct {
	log    *slog.Logger
	now    func() time.Time
	db     *index.DB
	client *storage.Client
	gcs    *objstore.GCS
	svc    *tracestore.Service
	api    *httpapi.Server
	holds  *holds.Service
	// gc renews keepers: its loop runs where --run-gc says, but every
	// replica uses it to renew keepers a request promoted.
	gc *ttl.GC
	// jobs runs canvas deletions; whoever serves the API runs jobs.Run.
	jobs   *canvases.Service
	limits traces.Limits
	// reg is the process's one metrics registry: the HTTP layer, the GCS
	// call counters and whatever GC and notify register (pass reg to them).
	reg *prometheus.Registry
	// objects is gcs with its calls counted by kind; hand it, not gcs, to
	// anything that talks to the bucket.
	objects *meteredGCS
	// subscriptionReady, when set (by whoever runs the notification
	// consumer), is checked by /readyz as "subscription".
	subscriptionReady func(ctx context.Context) error
}

// storageClient connects to GCS, or to an emulator when endpoint is set
// (or STORAGE_EMULATOR_HOST, which the client reads itself). Against real
// GCS the one way it fails is without credentials: the error then says how
// to get them, or how to use an emulator instead.
func storageClient(ctx context.Context, endpoint string) (*storage.Client, error) {
	if endpoint == "" {
		c, err := storage.NewClient(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w\n%s", err, credentialsHint)
		}
		return c, nil
	}
	return storage.NewClient(ctx,
		option.WithEndpoint(strings.TrimSuffix(endpoint, "/")+"/storage/v1/"),
		option.WithoutAuthentication(), storage.WithJSONReads())
}

// gcsEndpoint is the emulator the gateway talks to: --gcs-endpoint, else
// STORAGE_EMULATOR_HOST (HOST:PORT, as the storage client reads it); ""
// is real GCS.
func gcsEndpoint(c Config) string {
	if c.GCSEndpoint != "" {
		return c.GCSEndpoint
	}
	h := os.Getenv("STORAGE_EMULATOR_HOST")
	if h != "" && !strings.Contains(h, "://") {
		h = "http://" + h
	}
	return h
}

// credentialsHint follows a failure to reach real GCS.
const credentialsHint = `  real GCS needs Application Default Credentials: run "gcloud auth application-default login", or set GOOGLE_APPLICATION_CREDENTIALS to a key file
  an emulator needs no credentials: pass --gcs-endpoint URL (TRACEGW_GCS_ENDPOINT) or set STORAGE_EMULATOR_HOST=HOST:PORT (tracegw dev and tracegw emulator print both)`

func newStack(ctx context.Context, c Config, log *slog.Logger, now func() time.Time, auth httpapi.Authenticator) (*stack, error) {
	db, err := index.Open(ctx, c.DatabaseURL, index.Options{MaxConns: int32(max(c.DBMaxConns, 2))})
	if err != nil {
		return nil, fmt.Errorf("--database-url: %w", err) // index.Open names its step
	}
	endpoint := gcsEndpoint(c)
	client, err := storageClient(ctx, endpoint)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("storage client: %w", err)
	}
	s := &stack{log: log, now: now, db: db, client: client, gcs: objstore.New(client, c.Bucket)}
	// Saves create objects with one XML API PUT each (objstore/xml.go).
	hc, err := objstore.XMLClient(ctx, endpoint)
	if err != nil {
		db.Close()
		client.Close()
		return nil, err
	}
	xmlEndpoint := endpoint
	if xmlEndpoint == "" {
		xmlEndpoint = objstore.DefaultXMLEndpoint
	}
	s.gcs.UseXMLUploads(hc, xmlEndpoint)
	s.reg = prometheus.NewRegistry()
	s.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.objects = newMeteredGCS(s.gcs, s.reg)
	s.limits = traces.Limits{MaxBody: c.MaxBody}.OrDefault()
	s.holds = holds.New(s.objects, db, holds.Options{Now: now, Logger: log, Quota: c.HoldQuota})
	// The GC is managed (each pass checks the flags against the bucket's
	// lifecycle rule and the policy record: ttl.Resolve); it repairs
	// through the store, and the store renews promoted keepers through it.
	s.gc, err = ttl.New(s.objects, db, c.policy(), now, log, s.reg, ttl.Options{
		Bucket: s.objects, Replica: replicaName(),
		Repair: repairFunc(func(ctx context.Context, cv traces.CanvasID, id traces.TraceID, cutoff time.Time) error {
			return s.svc.Repair(ctx, cv, id, cutoff)
		}),
		Holds: s.holds, // passes release holds whose end has come
	})
	if err != nil {
		s.Close()
		return nil, err
	}
	// Listings describe the policy GC resolves (retention, the global
	// keep-N); a canvas's own keep is read by the index.
	so := tracestore.Options{
		Now: now, Logger: log, Limits: s.limits, Retention: time.Duration(c.Retention), Keep: c.KeepPerToplevel,
		Renewer: s.gc, Holds: s.holds, Policy: s.gc,
	}
	if c.UploadSigningKey != "" {
		signer, err := objstore.NewSigner(c.UploadSigningKey, c.UploadSigningID, endpoint, c.Bucket)
		if err != nil {
			s.Close()
			return nil, fmt.Errorf("--upload-signing-key: %w", err)
		}
		so.Uploads = signer
	}
	s.svc = tracestore.New(s.objects, db, so)
	var metrics prometheus.Gatherer = s.reg
	if c.AdminListen != "" {
		metrics = nil // served on the admin listener only
	}
	s.jobs = canvases.New(s.objects, db, canvases.Options{Now: now, Logger: log, Holds: s.holds,
		Policy: s.gc, DefaultKeep: c.KeepPerToplevel, Renewer: s.gc})
	s.api = httpapi.New(httpapi.Options{
		Service: s.svc, Holds: s.holds, Canvases: s.jobs,
		Auth: auth, Limits: s.limits, Logger: log.With("component", "http"),
		Ready: s.ready, Registerer: s.reg, Metrics: metrics, MaxInflightBytes: c.MaxInflightBytes,
	})
	return s, nil
}

// repairFunc adapts a function to ttl.Repairer.
type repairFunc func(ctx context.Context, c traces.CanvasID, id traces.TraceID, cutoff time.Time) error

func (f repairFunc) Repair(ctx context.Context, c traces.CanvasID, id traces.TraceID, cutoff time.Time) error {
	return f(ctx, c, id, cutoff)
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
	if s.subscriptionReady != nil {
		if err := s.subscriptionReady(ctx); err != nil {
			failed["subscription"] = err
		}
	}
	return failed
}

func (s *stack) Close() {
	_ = s.client.Close()
	s.db.Close()
}

// serveHTTP serves h on ln until ctx ends, then shuts down gracefully:
// stop accepting, let in-flight requests (saves) finish within timeout.
// Requests do not inherit ctx, so a signal never cancels a save halfway;
// past the timeout the remaining connections are closed. The caller closes
// the backends (pools) after serveHTTP returns.
func serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, timeout time.Duration, log *slog.Logger) error {
	// Headers are bounded in size and time; a whole request (a 16 MiB body
	// at 1 Mbit/s takes two minutes) in time too, so a client trickling a
	// body cannot hold a connection and its buffer for ever.
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 5 * time.Minute,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10}
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
	if err != nil {
		log.Warn("shutdown timed out; closing remaining connections", "duration", timeout, "err", err)
		_ = srv.Close()
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		return serr
	}
	return err
}
