package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/notify"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/ttl"
	"github.com/tracegw/tracegw/internal/webui"
)

// devSigningID is the access ID dev's upload URLs name.
const devSigningID = "tracegw-dev@localhost"

// runDev runs the whole system on one machine with no cloud account.
func runDev(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := Load("dev", args, os.Getenv, nil)
	if err != nil {
		return err
	}
	if err := c.ValidateRetention(); err != nil {
		return err
	}
	log := newLogger(stderr, true)
	d, err := startDev(ctx, c, log)
	if err != nil {
		return err
	}
	defer d.Close()
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", c.Listen, err)
	}
	d.printBanner(stdout, "http://"+ln.Addr().String())
	return d.serve(ctx, ln, c)
}

// devSystem is everything `tracegw dev` runs, built in dependency order and
// closed in reverse.
type devSystem struct {
	log      *slog.Logger
	emu      *emulator.Emulator
	emuSrv   *http.Server
	pubsub   *localPubSub  // Pub/Sub at PUBSUB_EMULATOR_HOST, if set
	queue    *notify.Queue // else notifications go through memory
	pg       *devPG
	st       *stack
	token    string
	consumer *consumer
	gc       *ttl.GC
	drained  int64 // notifications consumed as of the last drain
	closers  []func()
	// dbURL, gcsEndpoint and the names let other commands (status, gc,
	// reconcile, migrate, retention) reach this system; the banner prints
	// them.
	dbURL, gcsEndpoint, bucket string
	project, subscription      string
}

// startDev starts the emulator (filesystem data in <data-dir>/gcs), Pub/Sub,
// PostgreSQL (DATABASE_URL or a private server in <data-dir>/pg), migrates,
// sets the bucket up and builds the gateway on the emulator's clock.
func startDev(ctx context.Context, c Config, log *slog.Logger) (_ *devSystem, err error) {
	d := &devSystem{log: log}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("--data-dir %s: %w", c.DataDir, err)
	}
	var publish func(context.Context, string, []byte, map[string]string) error
	if os.Getenv("PUBSUB_EMULATOR_HOST") != "" {
		d.pubsub = startPubSub()
		d.closers = append(d.closers, d.pubsub.Close)
	} else {
		// Emulator and consumer share this process: notifications go
		// through memory, as fast as the consumer commits them.
		d.queue = notify.NewQueue()
		publish = d.queue.Publish
		d.pubsub = &localPubSub{}
	}

	emuLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	// Direct uploads: the gateway signs with this key, the emulator checks
	// with it.
	c.UploadSigningKey, c.UploadSigningID = filepath.Join(c.DataDir, "upload-signing.pem"), devSigningID
	upKey, err := objstore.LoadOrCreateSigningKey(c.UploadSigningKey)
	if err != nil {
		emuLn.Close()
		return nil, err
	}
	// PublicHost routes the gateway's XML API uploads.
	d.emu, err = emulator.New(ctx, emulator.Options{
		Dir: filepath.Join(c.DataDir, "gcs"), Step: c.GCInterval, PublicHost: emuLn.Addr().String(),
		PubSubClientOptions: d.pubsub.Opts, Publish: publish, Logger: log, // the emulator adds its component
		SigningKey: &upKey.PublicKey, SigningAccessID: devSigningID,
	})
	if err != nil {
		emuLn.Close()
		return nil, fmt.Errorf("start emulator: %w", err)
	}
	d.closers = append(d.closers, func() { _ = d.emu.Close() })
	d.emuSrv = &http.Server{Handler: d.emu.Handler()}
	go func() { _ = d.emuSrv.Serve(emuLn) }()
	d.closers = append(d.closers, func() { _ = d.emuSrv.Close() })
	c.GCSEndpoint = "http://" + emuLn.Addr().String()
	if err := d.emu.CreateBucket(ctx, c.Bucket); err != nil {
		return nil, err
	}

	if c.DatabaseURL == "" {
		pg, url, err := startDevPG(ctx, c.DataDir)
		if err != nil {
			return nil, err
		}
		d.pg, c.DatabaseURL = pg, url
		d.closers = append(d.closers, func() {
			if err := pg.Stop(); err != nil {
				log.Error("stop PostgreSQL", "err", err)
			}
		})
	}
	if err := migrate(ctx, c.DatabaseURL); err != nil {
		return nil, err
	}
	d.dbURL, d.gcsEndpoint, d.bucket = c.DatabaseURL, c.GCSEndpoint, c.Bucket
	d.project, d.subscription = c.PubSubProject, c.Subscription
	key, err := httpapi.LoadOrCreateKey(filepath.Join(c.DataDir, "signing.key"))
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	// Tokens expire on the wall clock, not the emulator's: advancing the
	// clock a month must not lock the developer out.
	now := time.Now()
	d.token, err = httpapi.Sign(key, httpapi.Claims{Role: httpapi.RoleAdmin, Subject: "tracegw-dev", IssuedAt: now, Expiry: now.Add(30 * 24 * time.Hour)})
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	d.st, err = newStack(ctx, c, log, d.emu.Now, &httpapi.BearerAuth{Key: key, Now: time.Now})
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, d.st.Close)
	if err := d.wireRetention(ctx, c); err != nil {
		return nil, err
	}
	return d, nil
}

// run runs the background workers (notification consumer, GC loop) until
// ctx ends.
func (d *devSystem) run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.consumer.Run(gctx) })
	g.Go(func() error { return d.gc.Run(gctx) })
	g.Go(func() error { return d.st.jobs.Run(gctx) })
	return g.Wait()
}

// handler serves the API and, on the same listener, the emulator's control
// routes and the trace browser (/ui/, which gets dev's admin token on
// loopback), so one URL drives everything.
func (d *devSystem) handler() http.Handler {
	api, emu := d.st.api.Handler(), d.emu.Handler()
	return withUI(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_emulator/") {
			emu.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	}), webui.Options{DevToken: d.token})
}

func (d *devSystem) serve(ctx context.Context, ln net.Listener, c Config) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.run(gctx) })
	g.Go(func() error {
		err := serveHTTP(gctx, ln, d.handler(), c.ShutdownTimeout, d.log)
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	})
	return g.Wait()
}

// Close stops everything in reverse order of start.
func (d *devSystem) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}
