package main

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

func TestLoad(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	cases := []struct {
		name  string
		cmd   string
		args  []string
		env   func(string) string
		check func(c Config) bool
		err   string
	}{
		{"defaults", "serve", nil, env(), func(c Config) bool {
			return c.Listen == ":8080" && c.Bucket == "traces" && time.Duration(c.Retention) == 7*24*time.Hour &&
				c.KeepPerToplevel == 10 && c.GCInterval == time.Hour && c.DBMaxConns == 16 && c.HoldQuota == 100
		}, ""},
		{"dev listens on 7070", "dev", nil, env(), func(c Config) bool { return c.Listen == "127.0.0.1:7070" }, ""},
		{"emulator listens on 4443", "emulator", nil, env(), func(c Config) bool { return c.Listen == "127.0.0.1:4443" }, ""},
		{"flag", "serve", []string{"--retention", "14d", "--gc-interval", "30m"}, env(), func(c Config) bool {
			return time.Duration(c.Retention) == 14*24*time.Hour && c.GCInterval == 30*time.Minute
		}, ""},
		{"env fills an unset flag", "serve", nil, env("TRACEGW_DATABASE_URL", "postgres://x/y", "TRACEGW_RUN_GC", "true"),
			func(c Config) bool { return c.DatabaseURL == "postgres://x/y" && c.RunGC }, ""},
		{"flag beats env", "serve", []string{"--bucket", "a"}, env("TRACEGW_BUCKET", "b"),
			func(c Config) bool { return c.Bucket == "a" }, ""},
		{"days and hours", "gc", []string{"--renew-margin", "1d12h"}, env(),
			func(c Config) bool { return time.Duration(c.RenewMargin) == 36*time.Hour }, ""},
		{"dev reads DATABASE_URL", "dev", nil, env("DATABASE_URL", "postgres://d"),
			func(c Config) bool { return c.DatabaseURL == "postgres://d" }, ""},
		{"dev reads TRACEGW_DATABASE_URL first", "dev", nil, env("DATABASE_URL", "postgres://d", "TRACEGW_DATABASE_URL", "postgres://t"),
			func(c Config) bool { return c.DatabaseURL == "postgres://t" }, ""},
		{"dev --database-url beats both", "dev", []string{"--database-url", "postgres://f"}, env("DATABASE_URL", "postgres://d", "TRACEGW_DATABASE_URL", "postgres://t"),
			func(c Config) bool { return c.DatabaseURL == "postgres://f" }, ""},
		{"dev without any database URL", "dev", nil, env(), func(c Config) bool { return c.DatabaseURL == "" }, ""},
		{"gc-interval takes days", "serve", []string{"--gc-interval", "1d", "--renew-margin", "4d", "--retention", "14d"}, env(),
			func(c Config) bool {
				return c.GCInterval == 24*time.Hour && time.Duration(c.RenewMargin) == 96*time.Hour
			}, ""},
		{"gc-interval from env takes days", "gc", nil, env("TRACEGW_GC_INTERVAL", "1d"),
			func(c Config) bool { return c.GCInterval == 24*time.Hour }, ""},
		{"every duration takes days", "token", []string{"--ttl", "7d"}, env(), func(c Config) bool { return c.TTL == 7*24*time.Hour }, ""},
		{"shutdown-timeout takes Go durations", "serve", []string{"--shutdown-timeout", "1m30s"}, env(),
			func(c Config) bool { return c.ShutdownTimeout == 90*time.Second }, ""},
		{"oidc flags", "serve", []string{"--oidc-audience", "https://gw.a.run.app", "--oidc-subjects", "/etc/tracegw/subjects"}, env(),
			func(c Config) bool {
				return c.OIDCAudience == "https://gw.a.run.app" && c.OIDCSubjects == "/etc/tracegw/subjects"
			}, ""},
		{"oidc env", "serve", nil, env("TRACEGW_OIDC_AUDIENCE", "https://gw.a.run.app", "TRACEGW_OIDC_SUBJECTS", "/s"),
			func(c Config) bool { return c.OIDCAudience == "https://gw.a.run.app" && c.OIDCSubjects == "/s" }, ""},
		{"oidc off by default", "serve", nil, env(), func(c Config) bool { return c.OIDCAudience == "" && c.OIDCSubjects == "" }, ""},
		{"token subject", "token", []string{"--subject", "svc-checkout"}, env(), func(c Config) bool { return c.Subject == "svc-checkout" }, ""},
		{"token subject from env", "token", nil, env("TRACEGW_SUBJECT", "ci"), func(c Config) bool { return c.Subject == "ci" }, ""},
		{"token subject default", "token", nil, env(), func(c Config) bool { return c.Subject == "tracegw-cli" }, ""},
		{"max inflight bytes from env", "serve", nil, env("TRACEGW_MAX_INFLIGHT_BYTES", "67108864"),
			func(c Config) bool { return c.MaxInflightBytes == 64<<20 && defaults().MaxInflightBytes == 256<<20 }, ""},
		{"upload signing key", "serve", []string{"--upload-signing-key", "/k.pem", "--upload-signing-id", "gw@p.iam.gserviceaccount.com"}, env(),
			func(c Config) bool {
				return c.UploadSigningKey == "/k.pem" && c.UploadSigningID == "gw@p.iam.gserviceaccount.com"
			}, ""},
		{"emulator checks with the upload signing key from env", "emulator", nil, env("TRACEGW_UPLOAD_SIGNING_KEY", "/k.json"),
			func(c Config) bool { return c.UploadSigningKey == "/k.json" && c.UploadSigningID == "" }, ""},
		{"direct uploads off by default", "serve", nil, env(), func(c Config) bool { return c.UploadSigningKey == "" }, ""},
		{"oidc is serve's", "token", []string{"--oidc-audience", "x"}, env(), nil, "oidc-audience"},
		{"bad env names its variable", "serve", nil, env("TRACEGW_KEEP_PER_TOPLEVEL", "ten"), nil, "TRACEGW_KEEP_PER_TOPLEVEL"},
		{"bad flag", "serve", []string{"--retention", "soon"}, env(), nil, "retention"},
		{"flag of another command", "migrate", []string{"--bucket", "x"}, env(), nil, "bucket"},
		{"unknown command", "nope", nil, env(), nil, "unknown command"},
		{"bench flags and env", "bench", []string{"--quick", "--json", "b.json"}, env("TRACEGW_SEED", "7", "TRACEGW_URL", "http://127.0.0.1:7070", "TRACEGW_QUICK", "false"),
			func(c Config) bool {
				return c.Quick && c.JSONOut == "b.json" && c.Seed == 7 && c.BenchURL == "http://127.0.0.1:7070" && c.ProfileDir == "" && c.Token == ""
			}, ""},
		{"bench bad seed", "bench", nil, env("TRACEGW_SEED", "-1"), nil, "TRACEGW_SEED"},
		{"retention set: Given names what the flags and env set", "retention set", []string{"--retention", "14d"},
			env("TRACEGW_DATABASE_URL", "postgres://x/y"), func(c Config) bool {
				return time.Duration(c.Retention) == 14*24*time.Hour && c.Given["retention"] && c.Given["database-url"] &&
					!c.Given["keep-per-toplevel"] && c.KeepPerToplevel == 10
			}, ""},
		{"retention show takes no retention flag", "retention show", []string{"--retention", "14d"}, env(), nil, "retention"},
		{"status: max notify lag", "status", []string{"--max-notify-lag", "10m"}, env("TRACEGW_GC_INTERVAL", "2h"),
			func(c Config) bool {
				return time.Duration(c.MaxNotifyLag) == 10*time.Minute && c.GCInterval == 2*time.Hour
			}, ""},
		{"import flags, env and its file", "import", []string{"--url", "http://127.0.0.1:7070", "--concurrency", "16", "traces.ndjson"},
			env("TRACEGW_TOKEN", "t", "TRACEGW_RATE", "500", "TRACEGW_CHECKPOINT", "cp"), func(c Config) bool {
				return c.BenchURL == "http://127.0.0.1:7070" && c.Token == "t" && c.Concurrency == 16 && c.Rate == 500 &&
					c.Checkpoint == "cp" && !c.DryRun && slices.Equal(c.Args, []string{"traces.ndjson"})
			}, ""},
		{"import defaults", "import", []string{"-"}, env(), func(c Config) bool {
			return c.Concurrency == 8 && c.Rate == 0 && c.Checkpoint == "" && slices.Equal(c.Args, []string{"-"})
		}, ""},
		{"serve --ui, off by default", "serve", []string{"--ui"}, env(), func(c Config) bool { return c.UI && !defaults().UI }, ""},
		{"ui from env", "serve", nil, env("TRACEGW_UI", "true"), func(c Config) bool { return c.UI }, ""},
		{"only import takes a file", "gc", []string{"x.ndjson"}, env(), nil, "unexpected argument"},
		{"status default lag", "status", nil, env(), func(c Config) bool { return time.Duration(c.MaxNotifyLag) == time.Hour && len(c.Given) == 0 }, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Load(tc.cmd, tc.args, tc.env, nil)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("Load = %v, want an error naming %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("Load gave %+v", c)
			}
		})
	}
}

func TestValidateRetentionNamesTheFlag(t *testing.T) {
	c := defaults()
	c.GCInterval = 12 * time.Hour // margin 2d < 3*12h + 1d
	err := c.ValidateRetention()
	if want := "--renew-margin 2d is unsafe: it must be at least 3 x --gc-interval + 1d = 60h0m0s"; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("ValidateRetention = %v, want it to say %q", err, want)
	}
	if !errors.Is(err, traces.ErrInvalid) {
		t.Errorf("ValidateRetention = %v, want it to wrap traces.ErrInvalid", err)
	}
	if err := defaults().ValidateRetention(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// A bad value names the flag (or variable and flag), the value and the
// form expected, whatever the flag's type.
func TestLoadErrorsNameFlagValueAndForm(t *testing.T) {
	t.Parallel()
	env := func(k, v string) func(string) string {
		return func(key string) string {
			if key == k {
				return v
			}
			return ""
		}
	}
	none := func(string) string { return "" }
	for _, tc := range []struct {
		cmd   string
		args  []string
		env   func(string) string
		wants []string
	}{
		{"gc", []string{"--gc-interval", "soon"}, none, []string{"-gc-interval", `"soon"`, "90m, 36h, 7d or 1d12h"}},
		{"gc", nil, env("TRACEGW_GC_INTERVAL", "1x"), []string{"TRACEGW_GC_INTERVAL", "--gc-interval", `"1x"`, "90m, 36h, 7d or 1d12h"}},
		{"serve", []string{"--retention", "-7d"}, none, []string{"-retention", `"-7d"`, "no sign"}},
		{"serve", []string{"--keep-per-toplevel", "ten"}, none, []string{"-keep-per-toplevel", `"ten"`, "whole number"}},
		{"serve", nil, env("TRACEGW_KEEP_PER_TOPLEVEL", "ten"), []string{"TRACEGW_KEEP_PER_TOPLEVEL", "--keep-per-toplevel", `"ten"`, "whole number"}},
		{"serve", []string{"--max-body", "16MiB"}, none, []string{"-max-body", `"16MiB"`, "number of bytes"}},
		{"serve", []string{"--run-gc=maybe"}, none, []string{"-run-gc", `"maybe"`, "true or false"}},
		{"serve", nil, env("TRACEGW_RUN_GC", "yes"), []string{"TRACEGW_RUN_GC", "--run-gc", `"yes"`, "true or false"}},
		{"bench", []string{"--seed", "-1"}, none, []string{"-seed", `"-1"`, "0 or more"}},
		{"token", []string{"--ttl", "forever"}, none, []string{"-ttl", `"forever"`, "7d"}},
	} {
		_, err := Load(tc.cmd, tc.args, tc.env, nil)
		if err == nil {
			t.Errorf("%s %v: no error", tc.cmd, tc.args)
			continue
		}
		for _, w := range tc.wants {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s %v: error %q lacks %q", tc.cmd, tc.args, err, w)
			}
		}
		if strings.Contains(err.Error(), "parse error") {
			t.Errorf("%s %v: error %q says only parse error", tc.cmd, tc.args, err)
		}
	}
}

// import's settings are checked together, each problem naming its flag.
func TestValidateImport(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want []string // substrings of the error; none: valid
	}{
		{[]string{"--url", "http://127.0.0.1:7070", "--token", "t", "f.ndjson"}, nil},
		{[]string{"--dry-run", "-"}, nil},
		{[]string{"f.ndjson"}, []string{"--url", "--token"}},
		{[]string{"--url", "127.0.0.1:7070", "--token", "t", "--concurrency", "0", "--rate", "-1"}, []string{"name one input", "http://", "--concurrency 0", "--rate -1"}},
		{[]string{"--dry-run", "a", "b"}, []string{"name one input"}},
	} {
		c, err := Load("import", tc.args, func(string) string { return "" }, nil)
		if err != nil {
			t.Fatalf("Load %q: %v", tc.args, err)
		}
		err = c.validateImport()
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%q: %v, want valid", tc.args, err)
			}
			continue
		}
		for _, w := range tc.want {
			if err == nil || !strings.Contains(err.Error(), w) {
				t.Errorf("%q: error %v, want it to name %q", tc.args, err, w)
			}
		}
	}
}
