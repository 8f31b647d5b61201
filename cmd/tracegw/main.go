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
	"strings"
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
	"import":       runImport,
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		// Asked for: the answer goes to stdout, and it is a success.
		if len(args) == 1 {
			usage(stdout)
			return 0
		}
		topic := helpTopic(args[1:])
		if _, ok := commands[strings.SplitN(topic, " ", 2)[0]]; !ok {
			fmt.Fprintf(stderr, "tracegw help: unknown command %q\n", topic)
			usage(stderr)
			return 2
		}
		Usage(stdout, topic)
		return 0
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
		Usage(stdout, helpTopic(args))
		return 0
	}
	fmt.Fprintf(stderr, "tracegw %s: %v\n", args[0], err)
	return 1
}

// newLogger is the one logger of a process: JSON for services, text for dev.
// Records logged with a request's context get its request_id.
func newLogger(w io.Writer, text bool) *slog.Logger {
	if text {
		return slog.New(httpapi.RequestLogHandler(slog.NewTextHandler(w, nil)))
	}
	return slog.New(httpapi.RequestLogHandler(slog.NewJSONHandler(w, nil)))
}
