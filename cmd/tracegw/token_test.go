package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/httpapi"
)

func TestMintToken(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "signing.key")
	key, err := httpapi.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	c, err := Load("token", []string{"--role", "editor", "--canvas", "7d3f5a1c-0000-4000-8000-00000000000a", "--ttl", "2h"},
		func(k string) string {
			if k == "TRACEGW_SIGNING_KEY_FILE" {
				return keyFile
			}
			return ""
		}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := mintToken(c, now)
	if err != nil {
		t.Fatal(err)
	}
	claims, err := httpapi.VerifyToken(key, tok, now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if claims.Role != httpapi.RoleEditor || claims.Canvas == nil || claims.Canvas.String() != "7d3f5a1c-0000-4000-8000-00000000000a" || !claims.Expiry.Equal(now.Add(2*time.Hour)) {
		t.Errorf("claims = %+v", claims)
	}

	// Every bad flag is reported at once, by name.
	c.Role, c.Canvas, c.TTL, c.SigningKeyFile = "root", "../etc", -time.Second, ""
	_, err = mintToken(c, now)
	for _, flag := range []string{"--role", "--canvas", "--ttl", "--signing-key-file"} {
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("error %v does not name %s", err, flag)
		}
	}
	short := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(short, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Role, c.Canvas, c.TTL, c.SigningKeyFile = "admin", "", time.Hour, short
	if _, err := mintToken(c, now); err == nil || !strings.Contains(err.Error(), "--signing-key-file") {
		t.Errorf("short key: error %v, want one naming --signing-key-file", err)
	}
}

func TestValidateServeAuthAndAdmin(t *testing.T) {
	t.Parallel()
	base := defaults()
	base.DatabaseURL = "postgres://x"
	for _, tc := range []struct {
		name string
		edit func(c *Config)
		want string // "" means valid
	}{
		{"no key", func(c *Config) {}, "--signing-key-file"},
		{"insecure", func(c *Config) { c.InsecureNoAuth = true }, ""},
		{"key", func(c *Config) { c.SigningKeyFile = "/k" }, ""},
		{"both", func(c *Config) { c.SigningKeyFile, c.InsecureNoAuth = "/k", true }, "--insecure-no-auth"},
		{"pprof without admin", func(c *Config) { c.InsecureNoAuth, c.Pprof = true, true }, "--pprof"},
		{"pprof on admin", func(c *Config) { c.InsecureNoAuth, c.Pprof, c.AdminListen = true, true, ":9090" }, ""},
		{"admin on listen", func(c *Config) { c.InsecureNoAuth, c.AdminListen = true, c.Listen }, "--admin-listen"},
		{"no shutdown timeout", func(c *Config) { c.InsecureNoAuth, c.ShutdownTimeout = true, 0 }, "--shutdown-timeout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base
			tc.edit(&c)
			err := c.validateServe()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("validateServe: %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Errorf("validateServe: %v, want an error naming %s", err, tc.want)
			}
		})
	}
}

func TestServeAuth(t *testing.T) {
	t.Parallel()
	var logs bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	auth, err := serveAuth(Config{InsecureNoAuth: true}, log)
	if err != nil || auth != nil {
		t.Fatalf("insecure: auth %v, err %v; want nil, nil", auth, err)
	}
	if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), "insecure-no-auth") {
		t.Errorf("no loud warning: %s", logs.String())
	}
	keyFile := filepath.Join(t.TempDir(), "k")
	if _, err := httpapi.LoadOrCreateKey(keyFile); err != nil {
		t.Fatal(err)
	}
	if auth, err := serveAuth(Config{SigningKeyFile: keyFile}, log); err != nil || auth == nil {
		t.Errorf("with key: auth %v, err %v", auth, err)
	}
	if _, err := serveAuth(Config{SigningKeyFile: keyFile + ".missing"}, log); err == nil || !strings.Contains(err.Error(), "--signing-key-file") {
		t.Errorf("missing key file: %v, want an error naming --signing-key-file", err)
	}
}
