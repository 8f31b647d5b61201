package main

import "time"

// Config and the defaults; the flags that set it are in flags.go, the
// environment in env.go.

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

	// setup-bucket: the subscription's dead-letter policy.
	// DeadLetterTopic "" means <subscription>-dead-letter.
	DeadLetterTopic     string
	MaxDeliveryAttempts int

	// Given names the flags set on the command line or from the
	// environment; a flag left at its default is absent (retention set
	// changes only what is given).
	Given map[string]bool
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
