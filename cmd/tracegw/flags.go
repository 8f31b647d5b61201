package main

import (
	"flag"
	"io"
	"time"
)

// The flags: one table of every flag (name, description, the Config field
// it sets) and the list each subcommand binds. The value types are in
// flagvalues.go, the descriptions a subcommand overrides and -h in
// help.go, the TRACEGW_ variables in env.go.

// flagDef binds one flag to a Config field; usage is its description
// unless usageByCommand has one for the subcommand.
type flagDef struct {
	name, usage string
	bind        func(fs *flag.FlagSet, c *Config, name, usage string)
}

// flags is the table of every flag; subcommands pick theirs by name.
var flags = map[string]flagDef{
	"listen":                {"listen", "address to serve the API on", str(func(c *Config) *string { return &c.Listen })},
	"admin-listen":          {"admin-listen", "address for /metrics and pprof (empty: metrics on the main listener, no pprof)", str(func(c *Config) *string { return &c.AdminListen })},
	"database-url":          {"database-url", "PostgreSQL URL of the index", str(func(c *Config) *string { return &c.DatabaseURL })},
	"db-max-conns":          {"db-max-conns", "connections in the index's pool", integer(func(c *Config) *int { return &c.DBMaxConns })},
	"bucket":                {"bucket", "GCS bucket dedicated to traces", str(func(c *Config) *string { return &c.Bucket })},
	"gcs-endpoint":          {"gcs-endpoint", "GCS endpoint URL (an emulator); empty: real GCS with default credentials", str(func(c *Config) *string { return &c.GCSEndpoint })},
	"pubsub-project":        {"pubsub-project", "Pub/Sub project of the notification topic and subscription", str(func(c *Config) *string { return &c.PubSubProject })},
	"topic":                 {"topic", "Pub/Sub topic the bucket notifies", str(func(c *Config) *string { return &c.Topic })},
	"subscription":          {"subscription", "Pub/Sub subscription of the notification consumer", str(func(c *Config) *string { return &c.Subscription })},
	"retention":             {"retention", "minimum time every trace is kept (lifecycle daysSinceCustomTime), e.g. 7d", daysFlag(func(c *Config) *Days { return &c.Retention })},
	"renew-margin":          {"renew-margin", "GC renews a keeper once its customTime is older than retention minus this; must be >= 3*gc-interval + 1d", daysFlag(func(c *Config) *Days { return &c.RenewMargin })},
	"keep-per-toplevel":     {"keep-per-toplevel", "newest traces of every live toplevel kept however old", integer(func(c *Config) *int { return &c.KeepPerToplevel })},
	"gc-interval":           {"gc-interval", "time between GC passes, and each pass's deadline", dur(func(c *Config) *time.Duration { return &c.GCInterval })},
	"run-gc":                {"run-gc", "run the GC loop in this process", boolean(func(c *Config) *bool { return &c.RunGC })},
	"run-notify":            {"run-notify", "run the deletion-notification consumer in this process", boolean(func(c *Config) *bool { return &c.RunNotify })},
	"signing-key-file":      {"signing-key-file", "file holding the key that signs and checks bearer tokens (HS256 JWTs; hex or raw, at least 32 bytes)", str(func(c *Config) *string { return &c.SigningKeyFile })},
	"oidc-audience":         {"oidc-audience", "also accept Google-signed ID tokens of service accounts for this audience (e.g. the service's URL); empty: off", str(func(c *Config) *string { return &c.OIDCAudience })},
	"oidc-subjects":         {"oidc-subjects", "file of the service accounts whose ID tokens are accepted: one 'EMAIL ROLE [CANVAS]' per line", str(func(c *Config) *string { return &c.OIDCSubjects })},
	"insecure-no-auth":      {"insecure-no-auth", "serve without authentication (every caller is admin)", boolean(func(c *Config) *bool { return &c.InsecureNoAuth })},
	"hold-quota":            {"hold-quota", "maximum held traces per canvas", integer(func(c *Config) *int { return &c.HoldQuota })},
	"max-body":              {"max-body", "maximum request body in bytes", func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(int64Value{&c.MaxBody}, n, u) }},
	"data-dir":              {"data-dir", "directory for dev's data (objects, PostgreSQL, signing key)", str(func(c *Config) *string { return &c.DataDir })},
	"pprof":                 {"pprof", "serve /debug/pprof on the admin listener", boolean(func(c *Config) *bool { return &c.Pprof })},
	"shutdown-timeout":      {"shutdown-timeout", "how long SIGTERM waits for in-flight requests", dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
	"role":                  {"role", "token role: executor, editor or admin", str(func(c *Config) *string { return &c.Role })},
	"canvas":                {"canvas", "canvas ID (token scope; reconcile: one canvas)", str(func(c *Config) *string { return &c.Canvas })},
	"ttl":                   {"ttl", "token lifetime", dur(func(c *Config) *time.Duration { return &c.TTL })},
	"subject":               {"subject", "token subject (sub): who the token is for", str(func(c *Config) *string { return &c.Subject })},
	"once":                  {"once", "run one pass and exit", boolean(func(c *Config) *bool { return &c.Once })},
	"dry-run":               {"dry-run", "report what would change, change nothing", boolean(func(c *Config) *bool { return &c.DryRun })},
	"quick":                 {"quick", "short run (under 2 minutes)", boolean(func(c *Config) *bool { return &c.Quick })},
	"url":                   {"url", "measure a running gateway on loopback (saves and reads only) instead of an embedded stack", str(func(c *Config) *string { return &c.BenchURL })},
	"token":                 {"token", "bearer token for --url (executor+editor rights: admin)", str(func(c *Config) *string { return &c.Token })},
	"json":                  {"json", "also write the results as JSON to this file", str(func(c *Config) *string { return &c.JSONOut })},
	"seed":                  {"seed", "seed of the generated payloads", func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(uint64Value{&c.Seed}, n, u) }},
	"profile":               {"profile", "write CPU profiles of the gateway during the 16 KiB c=1 and c=64 saves to this directory", str(func(c *Config) *string { return &c.ProfileDir })},
	"max-notify-lag":        {"max-notify-lag", "status warns when deletion notifications lag more than this", daysFlag(func(c *Config) *Days { return &c.MaxNotifyLag })},
	"upload-signing-key":    {"upload-signing-key", "RSA key (PEM, or a service account JSON key file) that signs direct-upload URLs of large traces; the emulator verifies signatures with it; empty: direct uploads off", str(func(c *Config) *string { return &c.UploadSigningKey })},
	"upload-signing-id":     {"upload-signing-id", "service account e-mail of --upload-signing-key (read from a JSON key file when empty)", str(func(c *Config) *string { return &c.UploadSigningID })},
	"concurrency":           {"concurrency", "requests in flight at once", integer(func(c *Config) *int { return &c.Concurrency })},
	"rate":                  {"rate", "requests started per second at most (0: no limit)", integer(func(c *Config) *int { return &c.Rate })},
	"checkpoint":            {"checkpoint", "file recording which lines are done, to resume an interrupted run (default: FILE.checkpoint beside the input; none for standard input)", str(func(c *Config) *string { return &c.Checkpoint })},
	"ui":                    {"ui", "serve the trace browser at /ui/", boolean(func(c *Config) *bool { return &c.UI })},
	"max-inflight-bytes":    {"max-inflight-bytes", "request body bytes held in memory at once across the process; past it a request waits up to 2s, then gets 503 with Retry-After (raised to just above --max-body if smaller)", func(fs *flag.FlagSet, c *Config, n, u string) { fs.Var(int64Value{&c.MaxInflightBytes}, n, u) }},
	"dead-letter-topic":     {"dead-letter-topic", "Pub/Sub topic (and subscription) that keeps notifications delivered --max-delivery-attempts times without an ack (empty: <subscription>-dead-letter)", str(func(c *Config) *string { return &c.DeadLetterTopic })},
	"max-delivery-attempts": {"max-delivery-attempts", "deliveries of one notification before Pub/Sub moves it to the dead-letter topic (5 to 100)", integer(func(c *Config) *int { return &c.MaxDeliveryAttempts })},
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
