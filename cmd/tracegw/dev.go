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

	"github.com/tracegw/tracegw/emulator"
)

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
	log     *slog.Logger
	emu     *emulator.Emulator
	emuSrv  *http.Server
	pubsub  *localPubSub
	pg      *devPG
	st      *stack
	token   string
	closers []func()
}

// startDev starts the emulator (filesystem data in <data-dir>/gcs), Pub/Sub,
// PostgreSQL (DATABASE_URL or a private server in <data-dir>/pg), migrates,
// sets the bucket up and builds the gateway on the emulator's clock.
func startDev(ctx context.Context, c Config, log *slog.Logger) (d *devSystem, err error) {
	d = &devSystem{log: log}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		return nil, fmt.Errorf("--data-dir %s: %w", c.DataDir, err)
	}
	d.pubsub = startPubSub()
	d.closers = append(d.closers, d.pubsub.Close)

	d.emu, err = emulator.New(ctx, emulator.Options{
		Dir: filepath.Join(c.DataDir, "gcs"), Step: c.GCInterval,
		PubSubClientOptions: d.pubsub.Opts, Logger: log.With("component", "emulator"),
	})
	if err != nil {
		return nil, fmt.Errorf("start emulator: %w", err)
	}
	d.closers = append(d.closers, func() { _ = d.emu.Close() })
	emuLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
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
	d.st, err = newStack(ctx, c, log, d.emu.Now, nil)
	if err != nil {
		return nil, err
	}
	d.closers = append(d.closers, d.st.Close)
	return d, nil
}

// handler serves the API and, on the same listener, the emulator's control
// routes, so one URL drives everything.
func (d *devSystem) handler() http.Handler {
	api, emu := d.st.api.Handler(), d.emu.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_emulator/") {
			emu.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

func (d *devSystem) serve(ctx context.Context, ln net.Listener, c Config) error {
	err := serveHTTP(ctx, ln, d.handler(), c.ShutdownTimeout, d.log)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
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
	canvas := "7d3f5a1c-0000-4000-8000-000000000001"
	fmt.Fprintf(w, "\ntry:\n  curl -s%s -H 'Content-Type: application/json' -d '{\"rootTLID\":\"1234\",\"input\":[[\"request\",{\"body\":\"hi\"}]]}' %s/v1/canvases/%s/traces\n", auth, url, canvas)
	fmt.Fprintf(w, "  curl -s%s %s/v1/canvases/%s/toplevels/1234/traces\n", auth, url, canvas)
	fmt.Fprintf(w, "  curl -s -X POST '%s/_emulator/clock/advance?by=8d'\n\n", url)
}

// Close stops everything in reverse order of start.
func (d *devSystem) Close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}
