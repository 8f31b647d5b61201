package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/objstore"
)

// runEmulator serves only the GCS emulator (with its Pub/Sub), for other
// programs' local setups.
func runEmulator(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := Load("emulator", args, os.Getenv, nil)
	if err != nil {
		return err
	}
	log := newLogger(stderr, true)
	ps := startPubSub()
	defer ps.Close()
	o := emulator.Options{
		Dir: filepath.Join(c.DataDir, "gcs"), PublicHost: c.Listen,
		PubSubClientOptions: ps.Opts, Logger: log, // the emulator adds its component
	}
	if c.UploadSigningKey != "" {
		// V4 signed URLs are checked with the key the gateway signs with.
		key, id, err := objstore.LoadSigningKey(c.UploadSigningKey, c.UploadSigningID)
		if err != nil {
			return fmt.Errorf("--upload-signing-key: %w", err)
		}
		o.SigningKey, o.SigningAccessID = &key.PublicKey, id
	}
	emu, err := emulator.New(ctx, o)
	if err != nil {
		return fmt.Errorf("start emulator: %w", err)
	}
	defer emu.Close()
	ln, err := net.Listen("tcp", c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", c.Listen, err)
	}
	fmt.Fprintf(stdout, "GCS emulator on http://%s (data in %s)\n", ln.Addr(), c.DataDir)
	fmt.Fprintf(stdout, "  export STORAGE_EMULATOR_HOST=%s TRACEGW_GCS_ENDPOINT=http://%s\n", ln.Addr(), ln.Addr())
	fmt.Fprintf(stdout, "  export PUBSUB_EMULATOR_HOST=%s   # where its notifications are published\n", ps.Addr)
	fmt.Fprintf(stdout, "  clock: curl http://%s/_emulator/clock ; curl -X POST -H '%s: 1' 'http://%s/_emulator/clock/advance?by=8d'\n", ln.Addr(), emulator.ControlHeader, ln.Addr())
	return serveHTTP(ctx, ln, emu.Handler(), c.ShutdownTimeout, log)
}
