package pgserver

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// newCluster makes a directory for a cluster that the server's OS user
// owns, under the system's temporary directory (short enough for a Unix
// socket path, and reachable by postgres when we are root). A cleanup stops
// a server left running and removes the directory.
func newCluster(t *testing.T) Cluster {
	t.Helper()
	if err := CheckBinaries(); err != nil {
		t.Fatalf("PostgreSQL 15 server binaries are needed in %s (apt-get install postgresql-15): %v", BinDir, err)
	}
	dir, err := os.MkdirTemp("", "pgserver-test-")
	if err != nil {
		t.Fatal(err)
	}
	c := Cluster{Dir: dir}
	t.Cleanup(func() {
		if _, err := os.Stat(filepath.Join(c.DataDir(), "postmaster.pid")); err == nil {
			_, _ = c.Stop(context.Background(), "immediate")
		}
		_ = os.RemoveAll(dir)
	})
	if err := ChownToServerUser(dir); err != nil {
		t.Fatal(err)
	}
	return c
}

// A private server: initialised, started on a Unix socket only, reachable
// by its URL; stopped, it is gone (no pid file, no socket, connections
// refused); started again, its data is still there; stopped and removed,
// nothing is left.
func TestClusterLifecycle(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	c := newCluster(t)
	if err := c.Init(ctx, "--no-sync"); err != nil {
		t.Fatal(err)
	}
	if err := c.AppendConf("listen_addresses = ''\nunix_socket_directories = " + Quote(c.Dir) + "\n"); err != nil {
		t.Fatal(err)
	}
	url := SocketURL(c.Dir, "postgres")
	start := func() {
		t.Helper()
		if out, err := c.Start(ctx); err != nil {
			log, _ := os.ReadFile(c.LogFile())
			t.Fatalf("start: %v\n%s\n%s", err, out, log)
		}
	}
	stop := func() {
		t.Helper()
		if out, err := c.Stop(ctx, "fast"); err != nil {
			t.Fatalf("stop: %v\n%s", err, out)
		}
		for _, p := range []string{filepath.Join(c.DataDir(), "postmaster.pid"), filepath.Join(c.Dir, ".s.PGSQL.5432")} {
			if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("after stop, %s: %v; want it gone", p, err)
			}
		}
		if conn, err := pgx.Connect(ctx, url); err == nil {
			conn.Close(ctx)
			t.Errorf("connected to %s after stop", url)
		}
	}
	exec := func(sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Fatalf("connect to %s: %v", url, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}

	start()
	exec("CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)")
	stop()

	start()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect after restart: %v", err)
	}
	var x int
	err = conn.QueryRow(ctx, "SELECT x FROM kept").Scan(&x)
	conn.Close(ctx)
	if err != nil || x != 42 {
		t.Fatalf("after restart: kept holds %d, %v; want 42", x, err)
	}
	stop()

	if err := os.RemoveAll(c.Dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: %v; want it removed", c.Dir, err)
	}
}

// Init's error carries initdb's own explanation.
func TestInitErrorCarriesOutput(t *testing.T) {
	c := newCluster(t)
	// initdb refuses a data directory that is not empty.
	if err := os.Mkdir(c.DataDir(), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.DataDir(), "stray"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := ChownToServerUser(c.DataDir()); err != nil {
		t.Fatal(err)
	}
	err := c.Init(t.Context())
	if err == nil || !strings.HasPrefix(err.Error(), "initdb: ") || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("Init into a non-empty directory: %v; want initdb's error saying the directory is not empty", err)
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{"pg/data": "'pg/data'", "it's": "'it''s'", "": "''"} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
