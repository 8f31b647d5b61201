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

	"cloud.google.com/go/pubsub/v2"
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

// wireRetention sets the bucket up (lifecycle rule, notification config),
// creates the topic and subscription, and builds the GC and the consumer;
// the emulator's clock then runs GC at each step and waits for the
// resulting notifications to be consumed.
func (d *devSystem) wireRetention(ctx context.Context, c Config) error {
	// A data dir kept from a run with another --retention has its rule:
	// set the rest of the bucket up against it, and change the retention
	// below the way `tracegw retention set` does.
	p := c.policy()
	if s, err := d.st.gcs.BucketSettings(ctx); err == nil {
		if r := ttl.ReadRule(s); r.Found {
			p.Retention = time.Duration(r.Days) * ttl.Day
		}
	}
	rep, err := ttl.SetupBucket(ctx, d.st.gcs, p, ttl.BucketOptions{Project: c.PubSubProject, Topic: c.topicName()}, false)
	if err != nil {
		return fmt.Errorf("set up bucket: %w", err)
	}
	for _, ch := range rep.Changes {
		d.log.Info("bucket set up", "change", ch)
	}
	if d.queue != nil {
		d.consumer, err = d.st.newQueueConsumer(d.queue, c.Bucket)
	} else {
		d.consumer, err = d.newPubSubConsumer(ctx, c)
	}
	if err != nil {
		return err
	}
	d.closers = append(d.closers, d.consumer.Close)
	d.gc = d.st.gc
	if _, err := d.gc.Check(ctx); errors.Is(err, ttl.ErrDisagree) {
		d.log.Info("the flags differ from the retention policy of the data dir: changing it", "reason", err)
		_, err := ttl.Change(ctx, d.st.objects, d.st.db, c.policy(), d.emu.Now, d.log, ttl.ChangeRequest{
			Retention: time.Duration(c.Retention), Keep: c.KeepPerToplevel,
		}, ttl.ChangeOptions{Step: func(line string) { d.log.Info("retention set", "step", line) }})
		if err != nil {
			return fmt.Errorf("change the retention policy to the flags': %w", err)
		}
	} else if err != nil {
		return err
	}
	d.emu.SetHooks(emulator.Hooks{OnStep: d.gc.Step, Drain: d.drain})
	return nil
}

// newPubSubConsumer creates the topic and subscription on the Pub/Sub at
// PUBSUB_EMULATOR_HOST and builds the consumer on it.
func (d *devSystem) newPubSubConsumer(ctx context.Context, c Config) (*consumer, error) {
	ps, err := pubsub.NewClient(ctx, c.PubSubProject, d.pubsub.Opts...)
	if err != nil {
		return nil, fmt.Errorf("pubsub client: %w", err)
	}
	err = notify.EnsureSubscription(ctx, ps, c.PubSubProject, c.Topic, c.Subscription)
	_ = ps.Close()
	if err != nil {
		return nil, err
	}
	return d.st.newConsumer(ctx, c, d.pubsub.Opts...)
}

// drain waits until the consumer has handled every notification the
// emulator published, and reports how many it handled since the last call.
func (d *devSystem) drain(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for d.consumer.Applied() < d.emu.Published() {
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("waiting for notifications: %d of %d consumed: %w", d.consumer.Applied(), d.emu.Published(), ctx.Err())
		case <-tick.C:
		}
	}
	now := d.consumer.Applied()
	n := now - d.drained
	d.drained = now
	return int(n), nil
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

func (d *devSystem) printBanner(w io.Writer, url string) {
	fmt.Fprintf(w, "tracegw dev is running at %s\n", url)
	if d.token != "" {
		fmt.Fprintf(w, "admin token: %s\n", d.token)
	}
	auth := ""
	if d.token != "" {
		auth = ` -H "Authorization: Bearer $TOKEN"`
		fmt.Fprintf(w, "\n  export TOKEN=%s\n", d.token)
	}
	if d.dbURL != "" {
		fmt.Fprintf(w, "\nits parts, for tracegw status, gc, reconcile, migrate and retention (TRACEGW_ variables) and other tools, from another shell:\n")
		for _, line := range d.exports() {
			fmt.Fprintf(w, "  %s\n", line)
		}
		fmt.Fprintf(w, "  go run ./cmd/tracegw status\n")
	}
	canvas := "7d3f5a1c-0000-4000-8000-000000000001"
	fmt.Fprintf(w, "\ntry:\n  curl -s%s -H 'Content-Type: application/json' -d '{\"rootTLID\":\"1234\",\"input\":[[\"request\",{\"body\":\"hi\"}]]}' %s/v1/canvases/%s/traces\n", auth, url, canvas)
	fmt.Fprintf(w, "  curl -s%s %s/v1/canvases/%s/toplevels/1234/traces\n", auth, url, canvas)
	fmt.Fprintf(w, "  curl -s -X POST -H '%s: 1' '%s/_emulator/clock/advance?by=8d'\n", emulator.ControlHeader, url)
	fmt.Fprintf(w, "\ntrace browser: %s/ui/#canvas=%s\n\n", url, canvas)
}

// exports are the shell lines that point other commands and tools at this
// system: the index (TRACEGW_DATABASE_URL, and DATABASE_URL for psql and
// friends), the GCS emulator (TRACEGW_GCS_ENDPOINT for tracegw,
// STORAGE_EMULATOR_HOST for Google's client libraries) and, when
// notifications go through one, the Pub/Sub emulator; else a comment says
// they pass in memory.
func (d *devSystem) exports() []string {
	host := strings.TrimPrefix(strings.TrimPrefix(d.gcsEndpoint, "http://"), "https://")
	lines := []string{
		"export TRACEGW_DATABASE_URL=" + shellQuote(d.dbURL) + " DATABASE_URL=" + shellQuote(d.dbURL),
		"export TRACEGW_GCS_ENDPOINT=" + shellQuote(d.gcsEndpoint) + " STORAGE_EMULATOR_HOST=" + shellQuote(host) +
			" TRACEGW_BUCKET=" + shellQuote(d.bucket),
	}
	if d.queue == nil && d.pubsub != nil && d.pubsub.Addr != "" {
		lines = append(lines, "export PUBSUB_EMULATOR_HOST="+shellQuote(d.pubsub.Addr)+
			" TRACEGW_PUBSUB_PROJECT="+shellQuote(d.project)+" TRACEGW_SUBSCRIPTION="+shellQuote(d.subscription))
	} else {
		lines = append(lines, "# deletion notifications pass in memory, with no Pub/Sub for `tracegw notify` to read: "+
			"start dev with PUBSUB_EMULATOR_HOST set to route them through a Pub/Sub emulator")
	}
	return lines
}

// shellQuote quotes s for a POSIX shell unless it is plainly safe.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:@-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Close stops everything in reverse order of start.
func (d *devSystem) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}
