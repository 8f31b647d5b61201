package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/tracegw/tracegw/internal/days"
)

// Config is every setting of every subcommand. Each subcommand binds only
// the fields it uses; a flag not given on the command line is filled from
// TRACEGW_<FLAG> (upper case, '-' → '_').
type Config struct {
	Listen          string
	AdminListen     string
	DatabaseURL     string
	DBMaxConns      int
	Bucket          string
	GCSEndpoint     string
	PubSubProject   string
	Topic           string
	Subscription    string
	Retention       Days
	RenewMargin     Days
	KeepPerToplevel int
	GCInterval      time.Duration
	RunGC           bool
	RunNotify       bool
	SigningKeyFile  string
	InsecureNoAuth  bool
	OIDCAudience    string // accept Google ID tokens for this audience ("": none)
	OIDCSubjects    string // file mapping service-account e-mails to roles
	HoldQuota       int
	MaxBody         int64
	DataDir         string
	Pprof           bool
	ShutdownTimeout time.Duration

	// MaxInflightBytes caps the request body bytes held in memory at once.
	MaxInflightBytes int64

	// UploadSigningKey is the RSA key (PEM, or a service account's JSON key
	// file) that signs direct-upload URLs; the emulator checks signatures
	// with it. UploadSigningID is the service account e-mail it belongs to
	// (taken from a JSON key file when empty). No key: direct uploads off.
	UploadSigningKey string
	UploadSigningID  string

	// token
	Role    string
	Canvas  string
	TTL     time.Duration
	Subject string

	// gc, reconcile
	Once   bool
	DryRun bool

	// bench
	Quick      bool
	BenchURL   string
	Token      string
	JSONOut    string
	Seed       uint64
	ProfileDir string

	// status
	MaxNotifyLag Days

	// import (its --url and --token are BenchURL and Token)
	Concurrency int
	Rate        int    // requests started per second; 0: no limit
	Checkpoint  string // "": beside the input file
	UI          bool   // serve: the trace browser at /ui/

	// Args are the positional arguments of a command that takes them
	// (import's FILE).
	Args []string

	// setup-bucket: the subscription's dead-letter policy (flags in
	// setup.go). DeadLetterTopic "" means <subscription>-dead-letter.
	DeadLetterTopic     string
	MaxDeliveryAttempts int

	// Given names the flags set on the command line or from the
	// environment; a flag left at its default is absent (retention set
	// changes only what is given).
	Given map[string]bool
}

// Days is a duration flag that also accepts a day unit: "7d", "1d12h",
// "36h" (days.Parse).
type Days time.Duration

func (d *Days) String() string { return days.Format(time.Duration(*d)) }

// Set parses the forms days.Parse accepts.
func (d *Days) Set(s string) error {
	v, err := days.Parse(s)
	if err != nil {
		return err
	}
	*d = Days(v)
	return nil
}

// defaults are the values every subcommand starts from.
func defaults() Config {
	return Config{
		Listen:           ":8080",
		Bucket:           "traces",
		PubSubProject:    "tracegw-dev",
		Topic:            "gcs-notifications",
		Subscription:     "tracegw-notify",
		Retention:        Days(7 * 24 * time.Hour),
		RenewMargin:      Days(2 * 24 * time.Hour),
		KeepPerToplevel:  10,
		GCInterval:       time.Hour,
		HoldQuota:        100,
		DBMaxConns:       16,
		MaxBody:          16 << 20,
		DataDir:          ".tracegw-dev",
		ShutdownTimeout:  20 * time.Second,
		Role:             "editor",
		TTL:              time.Hour,
		Subject:          "tracegw-cli",
		Seed:             1,
		MaxNotifyLag:     Days(time.Hour),
		MaxInflightBytes: 256 << 20,
		Concurrency:      8,

		MaxDeliveryAttempts: 100,
	}
}

// defaultsFor are the defaults of one subcommand: Load starts from them and
// Usage prints them.
func defaultsFor(cmd string) Config {
	c := defaults()
	switch cmd {
	case "dev":
		c.Listen = "127.0.0.1:7070"
	case "emulator":
		c.Listen = "127.0.0.1:4443"
	}
	return c
}

// flagDef binds one flag to a Config field; usage is its description
// unless usageByCommand has one for the subcommand.
type flagDef struct {
	name, usage string
	bind        func(fs *flag.FlagSet, c *Config, name, usage string)
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

// The flag values. Each Set error says what form is expected; the flag
// package adds the flag's name and the value given, Load the variable.

type stringValue struct{ p *string }

func (v stringValue) String() string {
	if v.p == nil {
		return ""
	}
	return *v.p
}
func (v stringValue) Set(s string) error { *v.p = s; return nil }

type boolValue struct{ p *bool }

func (v boolValue) String() string   { return strconv.FormatBool(v.p != nil && *v.p) }
func (v boolValue) IsBoolFlag() bool { return true }
func (v boolValue) Set(s string) error {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return errors.New("want true or false")
	}
	*v.p = b
	return nil
}

type intValue struct{ p *int }

func (v intValue) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.Itoa(*v.p)
}
func (v intValue) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("want a whole number such as 10")
	}
	*v.p = n
	return nil
}

type int64Value struct{ p *int64 }

func (v int64Value) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatInt(*v.p, 10)
}
func (v int64Value) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return errors.New("want a whole number of bytes such as 16777216")
	}
	*v.p = n
	return nil
}

type uint64Value struct{ p *uint64 }

func (v uint64Value) String() string {
	if v.p == nil {
		return "0"
	}
	return strconv.FormatUint(*v.p, 10)
}
func (v uint64Value) Set(s string) error {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return errors.New("want a whole number, 0 or more")
	}
	*v.p = n
	return nil
}

// durationValue is a time.Duration flag that takes days too (days.Parse),
// like the Days fields: every duration flag has one grammar.
type durationValue struct{ p *time.Duration }

func (v durationValue) String() string {
	if v.p == nil {
		return "0s"
	}
	return days.Format(*v.p)
}
func (v durationValue) Set(s string) error {
	d, err := days.Parse(s)
	if err != nil {
		return err
	}
	*v.p = d
	return nil
}

func str(f func(c *Config) *string) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(stringValue{f(c)}, n, u) }
}
func boolean(f func(c *Config) *bool) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(boolValue{f(c)}, n, u) }
}
func integer(f func(c *Config) *int) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(intValue{f(c)}, n, u) }
}
func dur(f func(c *Config) *time.Duration) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(durationValue{f(c)}, n, u) }
}
func daysFlag(f func(c *Config) *Days) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(f(c), n, u) }
}

// typeName is the word Usage prints after a flag's name: the form of its
// value (none for a boolean).
func typeName(v flag.Value) string {
	switch v.(type) {
	case boolValue:
		return ""
	case intValue, int64Value, uint64Value:
		return "number"
	case durationValue, *Days:
		return "duration"
	}
	return "string"
}

// flags is the table of every flag; subcommands pick theirs by name.
var flags = map[string]flagDef{
	"listen":             {"listen", "address to serve the API on", str(func(c *Config) *string { return &c.Listen })},
	"admin-listen":       {"admin-listen", "address for /metrics and pprof (empty: metrics on the main listener, no pprof)", str(func(c *Config) *string { return &c.AdminListen })},
	"database-url":       {"database-url", "PostgreSQL URL of the index", str(func(c *Config) *string { return &c.DatabaseURL })},
	"db-max-conns":       {"db-max-conns", "connections in the index's pool", integer(func(c *Config) *int { return &c.DBMaxConns })},
	"bucket":             {"bucket", "GCS bucket dedicated to traces", str(func(c *Config) *string { return &c.Bucket })},
	"gcs-endpoint":       {"gcs-endpoint", "GCS endpoint URL (an emulator); empty: real GCS with default credentials", str(func(c *Config) *string { return &c.GCSEndpoint })},
	"pubsub-project":     {"pubsub-project", "Pub/Sub project of the notification topic and subscription", str(func(c *Config) *string { return &c.PubSubProject })},
	"topic":              {"topic", "Pub/Sub topic the bucket notifies", str(func(c *Config) *string { return &c.Topic })},
	"subscription":       {"subscription", "Pub/Sub subscription of the notification consumer", str(func(c *Config) *string { return &c.Subscription })},
	"retention":          {"retention", "minimum time every trace is kept (lifecycle daysSinceCustomTime), e.g. 7d", daysFlag(func(c *Config) *Days { return &c.Retention })},
	"renew-margin":       {"renew-margin", "GC renews a keeper once its customTime is older than retention minus this; must be >= 3*gc-interval + 1d", daysFlag(func(c *Config) *Days { return &c.RenewMargin })},
	"keep-per-toplevel":  {"keep-per-toplevel", "newest traces of every live toplevel kept however old", integer(func(c *Config) *int { return &c.KeepPerToplevel })},
	"gc-interval":        {"gc-interval", "time between GC passes, and each pass's deadline", dur(func(c *Config) *time.Duration { return &c.GCInterval })},
	"run-gc":             {"run-gc", "run the GC loop in this process", boolean(func(c *Config) *bool { return &c.RunGC })},
	"run-notify":         {"run-notify", "run the deletion-notification consumer in this process", boolean(func(c *Config) *bool { return &c.RunNotify })},
	"signing-key-file":   {"signing-key-file", "file holding the key that signs and checks bearer tokens (HS256 JWTs; hex or raw, at least 32 bytes)", str(func(c *Config) *string { return &c.SigningKeyFile })},
	"oidc-audience":      {"oidc-audience", "also accept Google-signed ID tokens of service accounts for this audience (e.g. the service's URL); empty: off", str(func(c *Config) *string { return &c.OIDCAudience })},
	"oidc-subjects":      {"oidc-subjects", "file of the service accounts whose ID tokens are accepted: one 'EMAIL ROLE [CANVAS]' per line", str(func(c *Config) *string { return &c.OIDCSubjects })},
	"insecure-no-auth":   {"insecure-no-auth", "serve without authentication (every caller is admin)", boolean(func(c *Config) *bool { return &c.InsecureNoAuth })},
	"hold-quota":         {"hold-quota", "maximum held traces per canvas", integer(func(c *Config) *int { return &c.HoldQuota })},
	"max-body":           {"max-body", "maximum request body in bytes", func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(int64Value{&c.MaxBody}, n, u) }},
	"data-dir":           {"data-dir", "directory for dev's data (objects, PostgreSQL, signing key)", str(func(c *Config) *string { return &c.DataDir })},
	"pprof":              {"pprof", "serve /debug/pprof on the admin listener", boolean(func(c *Config) *bool { return &c.Pprof })},
	"shutdown-timeout":   {"shutdown-timeout", "how long SIGTERM waits for in-flight requests", dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	"role":               {"role", "token role: executor, editor or admin", str(func(c *Config) *string { return &c.Role })},
	"canvas":             {"canvas", "canvas ID (token scope; reconcile: one canvas)", str(func(c *Config) *string { return &c.Canvas })},
	"ttl":                {"ttl", "token lifetime", dur(func(c *Config) *time.Duration { return &c.TTL })},
	"subject":            {"subject", "token subject (sub): who the token is for", str(func(c *Config) *string { return &c.Subject })},
	"once":               {"once", "run one pass and exit", boolean(func(c *Config) *bool { return &c.Once })},
	"dry-run":            {"dry-run", "report what would change, change nothing", boolean(func(c *Config) *bool { return &c.DryRun })},
	"quick":              {"quick", "short run (under 2 minutes)", boolean(func(c *Config) *bool { return &c.Quick })},
	"url":                {"url", "measure a running gateway on loopback (saves and reads only) instead of an embedded stack", str(func(c *Config) *string { return &c.BenchURL })},
	"token":              {"token", "bearer token for --url (executor+editor rights: admin)", str(func(c *Config) *string { return &c.Token })},
	"json":               {"json", "also write the results as JSON to this file", str(func(c *Config) *string { return &c.JSONOut })},
	"seed":               {"seed", "seed of the generated payloads", func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(uint64Value{&c.Seed}, n, u) }},
	"profile":            {"profile", "write CPU profiles of the gateway during the 16 KiB c=1 and c=64 saves to this directory", str(func(c *Config) *string { return &c.ProfileDir })},
	"max-notify-lag":     {"max-notify-lag", "status warns when deletion notifications lag more than this", daysFlag(func(c *Config) *Days { return &c.MaxNotifyLag })},
	"upload-signing-key": {"upload-signing-key", "RSA key (PEM, or a service account JSON key file) that signs direct-upload URLs of large traces; the emulator verifies signatures with it; empty: direct uploads off", str(func(c *Config) *string { return &c.UploadSigningKey })},
	"upload-signing-id":  {"upload-signing-id", "service account e-mail of --upload-signing-key (read from a JSON key file when empty)", str(func(c *Config) *string { return &c.UploadSigningID })},
	"concurrency":        {"concurrency", "requests in flight at once", integer(func(c *Config) *int { return &c.Concurrency })},
	"rate":               {"rate", "requests started per second at most (0: no limit)", integer(func(c *Config) *int { return &c.Rate })},
	"checkpoint":         {"checkpoint", "file recording which lines are done, to resume an interrupted run (default: FILE.checkpoint beside the input; none for standard input)", str(func(c *Config) *string { return &c.Checkpoint })},
	"ui":                 {"ui", "serve the trace browser at /ui/", boolean(func(c *Config) *bool { return &c.UI })},
	"max-inflight-bytes": {"max-inflight-bytes", "request body bytes held in memory at once across the process; past it a request waits up to 2s, then gets 503 with Retry-After (raised to just above --max-body if smaller)", func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(int64Value{&c.MaxInflightBytes}, n, u) }},
}

// commandFlags names the flags each subcommand binds.
var commandFlags = map[string][]string{
	"serve":        {"listen", "admin-listen", "database-url", "db-max-conns", "bucket", "gcs-endpoint", "pubsub-project", "topic", "subscription", "retention", "renew-margin", "keep-per-toplevel", "gc-interval", "run-gc", "run-notify", "signing-key-file", "insecure-no-auth", "oidc-audience", "oidc-subjects", "hold-quota", "max-body", "max-inflight-bytes", "upload-signing-key", "upload-signing-id", "pprof", "shutdown-timeout", "ui"},
	"migrate":      {"database-url"},
	"version":      {},
	"token":        {"signing-key-file", "role", "canvas", "ttl", "subject"},
	"setup-bucket": {"bucket", "gcs-endpoint", "pubsub-project", "topic", "subscription", "dead-letter-topic", "max-delivery-attempts", "retention", "dry-run"},
	"gc":           {"database-url", "db-max-conns", "bucket", "gcs-endpoint", "retention", "renew-margin", "keep-per-toplevel", "gc-interval", "once", "dry-run"},
	"notify":       {"database-url", "db-max-conns", "bucket", "gcs-endpoint", "pubsub-project", "subscription"},
	"reconcile":    {"database-url", "db-max-conns", "bucket", "gcs-endpoint", "canvas", "dry-run"},
	"emulator":     {"listen", "data-dir", "upload-signing-key", "upload-signing-id"},
	"dev":          {"listen", "data-dir", "database-url", "bucket", "pubsub-project", "topic", "subscription", "retention", "renew-margin", "keep-per-toplevel", "gc-interval", "hold-quota", "max-inflight-bytes"},
	"bench":        {"quick", "url", "token", "json", "seed", "profile"},
	"import":       {"url", "token", "concurrency", "rate", "checkpoint", "dry-run"},
	"status":       {"database-url", "bucket", "gcs-endpoint", "renew-margin", "gc-interval", "max-notify-lag"},
	// The two subcommands of "retention".
	"retention set":  {"database-url", "bucket", "gcs-endpoint", "retention", "keep-per-toplevel", "renew-margin", "gc-interval", "dry-run"},
	"retention show": {"database-url", "bucket", "gcs-endpoint"},
}

// argsUsage is what a command's usage line shows after [flags].
var argsUsage = map[string]string{"import": " FILE|-"}

// takesArgs names the commands that take positional arguments after their
// flags.
var takesArgs = map[string]bool{"import": true}

// newFlagSet binds cmd's flags to c, with cmd's descriptions.
func newFlagSet(cmd string, c *Config) *flag.FlagSet {
	fs := flag.NewFlagSet("tracegw "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, n := range commandFlags[cmd] {
		d := flags[n]
		d.bind(fs, c, d.name, usageFor(cmd, n))
	}
	return fs
}

// envName is the environment variable of a flag: TRACEGW_ and the name in
// upper case, '-' as '_'.
func envName(flagName string) string {
	return "TRACEGW_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Load parses a subcommand's args, then fills unset flags from the
// environment. It is pure: getenv is the only source of environment. A bad
// value names the flag (or variable), the value and the form expected.
func Load(cmd string, args []string, getenv func(string) string, extra func(fs *flag.FlagSet)) (Config, error) {
	if _, ok := commandFlags[cmd]; !ok {
		return Config{}, fmt.Errorf("unknown command %q", cmd)
	}
	c := defaultsFor(cmd)
	fs := newFlagSet(cmd, &c)
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 && !takesArgs[cmd] {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	c.Args = fs.Args()
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		env := envName(f.Name)
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("invalid value %q for %s (--%s): %w", v, env, f.Name, err))
			}
			given[f.Name] = true
		}
	})
	c.Given = given
	if cmd == "dev" && c.DatabaseURL == "" {
		// The variable most PostgreSQL tools read, kept as dev's fallback.
		c.DatabaseURL = getenv("DATABASE_URL")
	}
	return c, errors.Join(errs...)
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
