package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/tracegw/tracegw/internal/pgserver"
)

// TestDevPGOwnerOnly: dev's private PostgreSQL trusts whoever opens its
// socket, so only the server's OS user may open it: the socket's directory
// and the socket are mode 0700, also for a cluster an earlier version left
// open; dev itself still connects. Run as root (the server then runs as
// postgres), another OS user (nobody) is refused while postgres gets in.
func TestDevPGOwnerOnly(t *testing.T) {
	dataDir := t.TempDir()
	// As root the server runs as postgres, which must reach the data dir.
	for _, p := range []string{dataDir, filepath.Dir(dataDir)} {
		if err := os.Chmod(p, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ctx := t.Context()
	start := func() *devPG {
		t.Helper()
		pg, url, err := startDevPG(ctx, dataDir)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = pg.Stop() })
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("dev connects to its own server: %v", err)
		}
		_ = conn.Close(ctx)
		return pg
	}
	check := func(when string, pg *devPG) {
		t.Helper()
		for _, p := range []string{pg.dir, filepath.Join(pg.dir, ".s.PGSQL.5432")} {
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if perm := fi.Mode().Perm(); perm != 0o700 {
				t.Errorf("%s: %s has mode %v, want 0700 (owner only)", when, p, perm)
			}
		}
		if os.Geteuid() != 0 {
			return // no other account to try without root; the modes above decide
		}
		psql := func(user string) (string, error) {
			cmd := exec.CommandContext(ctx, "runuser", "-u", user, "--", pgserver.Bin("psql"), "-X", "-w",
				"-h", pg.dir, "-U", "postgres", "-d", "postgres", "-c", "SELECT 1")
			cmd.Dir = "/"
			out, err := cmd.CombinedOutput()
			return string(out), err
		}
		if out, err := psql("nobody"); err == nil || !strings.Contains(out, "Permission denied") {
			t.Errorf("%s: OS user nobody ran psql on dev's server: %v\n%s\nwant permission denied", when, err, out)
		}
		if out, err := psql("postgres"); err != nil {
			t.Errorf("%s: the server's own OS user is refused: %v\n%s", when, err, out)
		}
	}
	pg := start()
	check("new cluster", pg)

	// A cluster as an earlier version left it: directory open to all, a
	// world-writable socket configured. The next start closes both.
	if err := pg.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(pg.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(pg.dir, "data", "postgresql.conf")
	f, err := os.OpenFile(conf, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\nunix_socket_permissions = 0777\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	pg = start()
	check("cluster of an earlier version", pg)
}
