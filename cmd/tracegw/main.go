// Command tracegw is the trace storage gateway: one binary with a
// subcommand per role (serve, dev, migrate, gc, notify, …). This package
// only parses configuration and wires the internal packages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/tracegw/tracegw/internal/httpapi"
)

var commands = map[string]func(ctx context.Context, args []string, stdout, stderr io.Writer) error{
	"serve":        runServe,
	"migrate":      runMigrate,
	"version":      runVersion,
	"emulator":     runEmulator,
	"dev":          runDev,
	"setup-bucket": runSetupBucket,
	"gc":           runGC,
	"notify":       runNotify,
	"reconcile":    runReconcile,
	"token":        runToken,
	"bench":        runBench,
	"retention":    runRetention,
	"status":       runStatus,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stderr)
		return 2
	}
	cmd, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "tracegw: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
	err := cmd(ctx, args[1:], stdout, stderr)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		Usage(stderr, args[0])
		return 2
	}
	fmt.Fprintf(stderr, "tracegw %s: %v\n", args[0], err)
	return 1
}

func usage(w io.Writer) {
	fmt.Fprint(w, `usage: tracegw COMMAND [flags]

commands:
  dev           everything on one machine: emulator, Pub/Sub, PostgreSQL, the API
  serve         the gateway against real (or emulated) services
  migrate       apply the schema migrations
  setup-bucket  create or verify the bucket's lifecycle rule and notification config
  gc            run the retention job
  notify        run the deletion-notification consumer
  reconcile     compare index and bucket, remove rows whose objects are gone
  retention     show or change retention and keep-N safely (retention set|show)
  status        GC health, retention, notification lag, index size; exit 1 on warnings
  emulator      only the GCS emulator
  token         print a bearer token (a JWT signed with --signing-key-file)
  bench         the benchmark suite
  version       version and build info

Every flag also reads TRACEGW_<FLAG> from the environment. Run
"tracegw COMMAND -h" for a command's flags.
`)
}

// newLogger is the one logger of a process: JSON for services, text for dev.
// Records logged with a request's context get its request_id.
func newLogger(w io.Writer, text bool) *slog.Logger {
	if text {
		return slog.New(httpapi.RequestLogHandler(slog.NewTextHandler(w, nil)))
	}
	return slog.New(httpapi.RequestLogHandler(slog.NewJSONHandler(w, nil)))
}
