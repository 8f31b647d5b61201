package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
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

	// Given names the flags set on the command line or from the
	// environment; a flag left at its default is absent (retention set
	// changes only what is given).
	Given map[string]bool
}

// Days is a duration flag that also accepts a day unit: "7d", "1d12h", "36h".
type Days time.Duration

func (d *Days) String() string { return FormatDays(time.Duration(*d)) }

// Set parses "7d", "1d12h" or any time.ParseDuration value.
func (d *Days) Set(s string) error {
	v, err := ParseDays(s)
	*d = Days(v)
	return err
}

// ParseDays parses a duration with an optional leading day count.
func ParseDays(s string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 {
			return 0, fmt.Errorf("bad day count in %q", s)
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	rest, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return days + rest, nil
}

// FormatDays renders whole days as "7d" and anything else as a Go duration.
func FormatDays(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
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
	}
}

// flagDef binds one flag to a Config field.
type flagDef struct {
	name, usage string
	bind        func(fs *flag.FlagSet, c *Config, name, usage string)
}

func str(f func(c *Config) *string) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, n, u string) { fs.StringVar(f(c), n, *f(c), u) }
}
func boolean(f func(c *Config) *bool) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, n, u string) { fs.BoolVar(f(c), n, *f(c), u) }
}
func integer(f func(c *Config) *int) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, n, u string) { fs.IntVar(f(c), n, *f(c), u) }
}
func dur(f func(c *Config) *time.Duration) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, n, u string) { fs.DurationVar(f(c), n, *f(c), u) }
}
func days(f func(c *Config) *Days) func(*flag.FlagSet, *Config, string, string) {
	return func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(f(c), n, u) }
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
	"retention":          {"retention", "minimum time every trace is kept (lifecycle daysSinceCustomTime), e.g. 7d", days(func(c *Config) *Days { return &c.Retention })},
	"renew-margin":       {"renew-margin", "GC renews a keeper once its customTime is older than retention minus this; must be >= 3*gc-interval + 1d", days(func(c *Config) *Days { return &c.RenewMargin })},
	"keep-per-toplevel":  {"keep-per-toplevel", "newest traces of every live toplevel kept however old", integer(func(c *Config) *int { return &c.KeepPerToplevel })},
	"gc-interval":        {"gc-interval", "time between GC passes, and each pass's deadline", dur(func(c *Config) *time.Duration { return &c.GCInterval })},
	"run-gc":             {"run-gc", "run the GC loop in this process", boolean(func(c *Config) *bool { return &c.RunGC })},
	"run-notify":         {"run-notify", "run the deletion-notification consumer in this process", boolean(func(c *Config) *bool { return &c.RunNotify })},
	"signing-key-file":   {"signing-key-file", "file holding the key that signs bearer tokens (HS256 JWTs)", str(func(c *Config) *string { return &c.SigningKeyFile })},
	"oidc-audience":      {"oidc-audience", "also accept Google-signed ID tokens of service accounts for this audience (e.g. the service's URL); empty: off", str(func(c *Config) *string { return &c.OIDCAudience })},
	"oidc-subjects":      {"oidc-subjects", "file of the service accounts whose ID tokens are accepted: one 'EMAIL ROLE [CANVAS]' per line", str(func(c *Config) *string { return &c.OIDCSubjects })},
	"insecure-no-auth":   {"insecure-no-auth", "serve without authentication (every caller is admin)", boolean(func(c *Config) *bool { return &c.InsecureNoAuth })},
	"hold-quota":         {"hold-quota", "maximum held traces per canvas", integer(func(c *Config) *int { return &c.HoldQuota })},
	"max-body":           {"max-body", "maximum request body in bytes", func(fs *flag.FlagSet, c *Config, n, u string) { fs.Int64Var(&c.MaxBody, n, c.MaxBody, u) }},
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
	"seed":               {"seed", "seed of the generated payloads", func(fs *flag.FlagSet, c *Config, n, u string) { fs.Uint64Var(&c.Seed, n, c.Seed, u) }},
	"profile":            {"profile", "write CPU profiles of the gateway during the 16 KiB c=1 and c=64 saves to this directory", str(func(c *Config) *string { return &c.ProfileDir })},
	"max-notify-lag":     {"max-notify-lag", "status warns when deletion notifications lag more than this", days(func(c *Config) *Days { return &c.MaxNotifyLag })},
	"upload-signing-key": {"upload-signing-key", "RSA key (PEM, or a service account JSON key file) that signs direct-upload URLs of large traces; the emulator verifies signatures with it; empty: direct uploads off", str(func(c *Config) *string { return &c.UploadSigningKey })},
	"upload-signing-id":  {"upload-signing-id", "service account e-mail of --upload-signing-key (read from a JSON key file when empty)", str(func(c *Config) *string { return &c.UploadSigningID })},
	"max-inflight-bytes": {"max-inflight-bytes", "request body bytes held in memory at once across the process; past it a request waits up to 2s, then gets 503 with Retry-After (raised to just above --max-body if smaller)", func(fs *flag.FlagSet, c *Config, n, u string) {
		fs.Int64Var(&c.MaxInflightBytes, n, c.MaxInflightBytes, u)
	}},
}

// commandFlags names the flags each subcommand binds.
var commandFlags = map[string][]string{
	"serve":        {"listen", "admin-listen", "database-url", "db-max-conns", "bucket", "gcs-endpoint", "pubsub-project", "topic", "subscription", "retention", "renew-margin", "keep-per-toplevel", "gc-interval", "run-gc", "run-notify", "signing-key-file", "insecure-no-auth", "oidc-audience", "oidc-subjects", "hold-quota", "max-body", "max-inflight-bytes", "upload-signing-key", "upload-signing-id", "pprof", "shutdown-timeout"},
	"migrate":      {"database-url"},
	"version":      {},
	"token":        {"signing-key-file", "role", "canvas", "ttl", "subject"},
	"setup-bucket": {"bucket", "gcs-endpoint", "pubsub-project", "topic", "retention", "dry-run"},
	"gc":           {"database-url", "db-max-conns", "bucket", "gcs-endpoint", "retention", "renew-margin", "keep-per-toplevel", "gc-interval", "once", "dry-run"},
	"notify":       {"database-url", "db-max-conns", "bucket", "gcs-endpoint", "pubsub-project", "subscription"},
	"reconcile":    {"database-url", "db-max-conns", "bucket", "gcs-endpoint", "canvas", "dry-run"},
	"emulator":     {"listen", "data-dir", "upload-signing-key", "upload-signing-id"},
	"dev":          {"listen", "data-dir", "bucket", "pubsub-project", "topic", "subscription", "retention", "renew-margin", "keep-per-toplevel", "gc-interval", "hold-quota", "max-inflight-bytes"},
	"bench":        {"quick", "url", "token", "json", "seed", "profile"},
	"status":       {"database-url", "bucket", "gcs-endpoint", "renew-margin", "gc-interval", "max-notify-lag"},
	// The two subcommands of "retention".
	"retention set":  {"database-url", "bucket", "gcs-endpoint", "retention", "keep-per-toplevel", "renew-margin", "gc-interval", "dry-run"},
	"retention show": {"database-url", "bucket", "gcs-endpoint"},
}

// Load parses a subcommand's args, then fills unset flags from the
// environment. It is pure: getenv is the only source of environment.
func Load(cmd string, args []string, getenv func(string) string, extra func(fs *flag.FlagSet)) (Config, error) {
	names, ok := commandFlags[cmd]
	if !ok {
		return Config{}, fmt.Errorf("unknown command %q", cmd)
	}
	c := defaults()
	switch cmd {
	case "dev":
		c.Listen = "127.0.0.1:7070"
	case "emulator":
		c.Listen = "127.0.0.1:4443"
	}
	fs := flag.NewFlagSet("tracegw "+cmd, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	for _, n := range names {
		d := flags[n]
		d.bind(fs, &c, d.name, d.usage)
	}
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	if fs.NArg() > 0 {
		return Config{}, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] {
			return
		}
		env := "TRACEGW_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(env); v != "" {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("%s=%q: %w", env, v, err))
			}
			given[f.Name] = true
		}
	})
	c.Given = given
	if cmd == "dev" && c.DatabaseURL == "" {
		c.DatabaseURL = getenv("DATABASE_URL")
	}
	return c, errors.Join(errs...)
}

// Usage prints a subcommand's flags.
func Usage(w io.Writer, cmd string) {
	if cmd == "retention" {
		Usage(w, "retention set")
		Usage(w, "retention show")
		return
	}
	fs := flag.NewFlagSet("tracegw "+cmd, flag.ContinueOnError)
	c := defaults()
	for _, n := range commandFlags[cmd] {
		d := flags[n]
		d.bind(fs, &c, d.name, d.usage)
	}
	fs.SetOutput(w)
	fmt.Fprintf(w, "usage: tracegw %s [flags]\n", cmd)
	fs.PrintDefaults()
}
