package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

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
	c, err := Load("token", []string{"--role", "editor", "--canvas", "7d3f5a1c-0000-4000-8000-00000000000a", "--ttl", "2h", "--subject", "svc-checkout"},
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
	if claims.Role != httpapi.RoleEditor || claims.Canvas == nil || claims.Canvas.String() != "7d3f5a1c-0000-4000-8000-00000000000a" ||
		claims.Subject != "svc-checkout" || !claims.IssuedAt.Equal(now) || !claims.Expiry.Equal(now.Add(2*time.Hour)) {
		t.Errorf("claims = %+v", claims)
	}
	// A standard JWT: any HS256 library reads it with the key.
	var std jwt.MapClaims
	if _, err := jwt.ParseWithClaims(tok, &std, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now })); err != nil {
		t.Fatal(err)
	}
	want := jwt.MapClaims{"iss": "tracegw", "aud": []any{"tracegw"}, "sub": "svc-checkout", "role": "editor",
		"canvas": "7d3f5a1c-0000-4000-8000-00000000000a", "iat": float64(now.Unix()), "exp": float64(now.Add(2 * time.Hour).Unix())}
	if diff := cmp.Diff(want, std); diff != "" {
		t.Errorf("JWT claims (-want +got):\n%s", diff)
	}

	// Every bad flag is reported at once, by name.
	c.Role, c.Canvas, c.TTL, c.SigningKeyFile, c.Subject = "root", "../etc", -time.Second, "", ""
	_, err = mintToken(c, now)
	for _, flag := range []string{"--role", "--canvas", "--ttl", "--signing-key-file", "--subject"} {
		if err == nil || !strings.Contains(err.Error(), flag) {
			t.Errorf("error %v does not name %s", err, flag)
		}
	}
	short := filepath.Join(t.TempDir(), "short.key")
	if err := os.WriteFile(short, []byte("0123456789"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.Role, c.Canvas, c.TTL, c.SigningKeyFile, c.Subject = "admin", "", time.Hour, short, "x"
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
		{"oidc", func(c *Config) { c.SigningKeyFile, c.OIDCAudience, c.OIDCSubjects = "/k", "https://gw.a.run.app", "/s" }, ""},
		{"oidc audience alone", func(c *Config) { c.SigningKeyFile, c.OIDCAudience = "/k", "https://gw.a.run.app" }, "--oidc-subjects"},
		{"oidc subjects alone", func(c *Config) { c.SigningKeyFile, c.OIDCSubjects = "/k", "/s" }, "--oidc-audience"},
		{"oidc without auth", func(c *Config) { c.InsecureNoAuth, c.OIDCAudience, c.OIDCSubjects = true, "https://gw.a.run.app", "/s" }, "--insecure-no-auth"},
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
	auth, err := serveAuth(t.Context(), Config{InsecureNoAuth: true}, log)
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
	if auth, err := serveAuth(t.Context(), Config{SigningKeyFile: keyFile}, log); err != nil || auth == nil {
		t.Errorf("with key: auth %v, err %v", auth, err)
	}
	if _, err := serveAuth(t.Context(), Config{SigningKeyFile: keyFile + ".missing"}, log); err == nil || !strings.Contains(err.Error(), "--signing-key-file") {
		t.Errorf("missing key file: %v, want an error naming --signing-key-file", err)
	}
	subjects := filepath.Join(t.TempDir(), "subjects")
	if err := os.WriteFile(subjects, []byte("gw@p.iam.gserviceaccount.com admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	auth, err = serveAuth(t.Context(), Config{SigningKeyFile: keyFile, OIDCAudience: "https://gw.a.run.app", OIDCSubjects: subjects}, log)
	if b, ok := auth.(*httpapi.BearerAuth); err != nil || !ok || b.Google == nil {
		t.Errorf("with --oidc-audience: auth %v, err %v; want Google ID tokens accepted", auth, err)
	}
	if _, err := serveAuth(t.Context(), Config{SigningKeyFile: keyFile, OIDCAudience: "a", OIDCSubjects: subjects + ".missing"}, log); err == nil || !strings.Contains(err.Error(), "--oidc-subjects") {
		t.Errorf("missing subjects file: %v, want an error naming --oidc-subjects", err)
	}
}
