package main

import (
	"flag"
	"fmt"
	"io"
)

// The help texts: `tracegw help` (every command with its summary) and each
// subcommand's -h (its summary and flags, with variables and defaults).

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

// usageByCommand holds the descriptions of flags that mean something of
// their own in a subcommand (dev's --listen also serves the emulator's
// control routes; token's --canvas scopes a token, reconcile's picks what
// to compare). Each subcommand's -h shows only its own.
var usageByCommand = map[string]map[string]string{
	"dev": {
		"listen":       "address of the API; the emulator's control routes (/_emulator/...) share it",
		"data-dir":     "directory for dev's data, kept between runs: the emulator's objects (gcs/), the private PostgreSQL (pg/) and the signing key (signing.key)",
		"database-url": "PostgreSQL URL of the index; empty: DATABASE_URL, else a private server in <data-dir>/pg",
		"gc-interval":  "time between GC passes and each pass's deadline; also the step of the emulator's clock advance (GC runs at every step)",
	},
	"emulator": {
		"listen":   "address of the GCS emulator: its JSON and XML API and the /_emulator/ control routes",
		"data-dir": "directory for the emulator's objects and state (<data-dir>/gcs), kept between runs",
	},
	"token": {
		"canvas":           "canvas ID the token is limited to; empty: every canvas",
		"signing-key-file": "file holding the gateway's signing key (serve's --signing-key-file; a running dev keeps it in <data-dir>/signing.key)",
	},
	"reconcile": {
		"canvas":  "compare only this canvas ID; empty: every canvas",
		"dry-run": "report what is out of step, remove no index row",
	},
	"setup-bucket": {
		"retention": "retention of the lifecycle rule to create, e.g. 7d (an existing rule is never changed: tracegw retention set does that)",
		"topic":     "Pub/Sub topic the bucket's notification config publishes to",
		"dry-run":   "print what would change in the bucket and Pub/Sub, change nothing",
	},
	"gc": {
		"dry-run": "run one pass that reads the index only and counts what it would renew; change nothing",
	},
	"retention set": {
		"retention":         "the new retention, whole days (e.g. 14d); not given: unchanged",
		"keep-per-toplevel": "the new number of newest traces kept per live toplevel; not given: unchanged",
		"dry-run":           "print the steps of the change, change nothing",
	},
	"import": {
		"url":     "URL of the running gateway (tracegw dev or serve) to import into",
		"token":   "admin bearer token of that gateway (import mode needs the admin role)",
		"dry-run": "decode and check every line as the gateway would; send nothing",
	},
	"serve": {
		"ui": "serve the trace browser at /ui/ (the page asks for an admin token)",
	},
	"status": {
		"renew-margin": "the renew margin GC runs with: status warns when less than half of it is left before the keeper deadline",
		"gc-interval":  "the interval GC runs with: status warns when no pass ended for twice as long, or a pass took most of it",
	},
}

// usageFor is the description of flag name in subcommand cmd.
func usageFor(cmd, name string) string {
	if u, ok := usageByCommand[cmd][name]; ok {
		return u
	}
	return flags[name].usage
}

// Usage prints a subcommand's summary and flags, each with its variable
// and the default that Load starts from.
func Usage(w io.Writer, cmd string) {
	if cmd == "retention" {
		Usage(w, "retention set")
		fmt.Fprintln(w)
		Usage(w, "retention show")
		return
	}
	c := defaultsFor(cmd)
	fs := newFlagSet(cmd, &c)
	fmt.Fprintf(w, "usage: tracegw %s [flags]%s\n", cmd, argsUsage[cmd])
	if s := commandSummary(cmd); s != "" {
		fmt.Fprintf(w, "\n%s.\n", s)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintf(w, "\nflags (one not given is read from its variable; a duration takes a day unit: 90m, 36h, 7d, 1d12h):\n")
	fs.VisitAll(func(f *flag.Flag) {
		fmt.Fprintf(w, "  --%s", f.Name)
		if t := typeName(f.Value); t != "" {
			fmt.Fprintf(w, " %s", t)
		}
		fmt.Fprintf(w, "  (env %s)\n    \t%s", envName(f.Name), f.Usage)
		switch def := f.Value.String(); {
		case def == "" || def == "false" || def == "0" || def == "0s":
		case typeName(f.Value) == "string":
			fmt.Fprintf(w, " (default %q)", def)
		default:
			fmt.Fprintf(w, " (default %s)", def)
		}
		fmt.Fprintln(w)
	})
}
