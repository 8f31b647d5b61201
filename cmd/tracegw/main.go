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

// commandList is every command in the order `tracegw help` shows them,
// with its one-line summary (also the first line of its -h).
var commandList = []struct{ name, summary string }{
	{"dev", "everything on one machine: emulator, Pub/Sub, PostgreSQL, the API"},
	{"serve", "the gateway against real (or emulated) services"},
	{"migrate", "apply the schema migrations"},
	{"setup-bucket", "create or fix the bucket, its lifecycle rule and the notification path (topic, subscription, dead letters)"},
	{"gc", "run the retention job"},
	{"notify", "run the deletion-notification consumer"},
	{"reconcile", "compare index and bucket, remove rows whose objects are gone"},
	{"retention", "show or change retention and keep-N safely (retention set|show)"},
	{"status", "GC health, retention, notification lag, index size; exit 1 on warnings"},
	{"emulator", "only the GCS emulator"},
	{"import", "import NDJSON trace documents through a running gateway: idempotent, resumable"},
	{"token", "print a bearer token (a JWT signed with --signing-key-file)"},
	{"bench", "the benchmark suite"},
	{"version", "version and build info"},
}

// subcommandSummaries are the summaries of retention's subcommands.
var subcommandSummaries = map[string]string{
	"retention set":  "change retention and/or keep-N safely; re-run to finish a change that stopped",
	"retention show": "the bucket's lifecycle rule, the recorded policy and any change in progress",
}

// commandSummary is cmd's one-line summary ("" if unknown).
func commandSummary(cmd string) string {
	if s, ok := subcommandSummaries[cmd]; ok {
		return s
	}
	for _, c := range commandList {
		if c.name == cmd {
			return c.summary
		}
	}
	return ""
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

// helpTopic names the usage to print for a command line: the command, or
// "retention set"/"retention show" when a subcommand is named.
func helpTopic(args []string) string {
	if len(args) > 1 && args[0] == "retention" {
		if t := "retention " + args[1]; subcommandSummaries[t] != "" {
			return t
		}
	}
	return args[0]
}

func usage(w io.Writer) {
	fmt.Fprint(w, "usage: tracegw COMMAND [flags]\n\ncommands:\n")
	for _, c := range commandList {
		fmt.Fprintf(w, "  %-13s %s\n", c.name, c.summary)
	}
	fmt.Fprint(w, `
Every flag also reads TRACEGW_<FLAG> from the environment (upper case, '-'
as '_'). Run "tracegw COMMAND -h" or "tracegw help COMMAND" for a command's
flags.
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
