package testutil

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tracegw/tracegw/internal/pgserver"
	"github.com/tracegw/tracegw/schema"
)

// EnvDatabaseURL names the variable that points the tests at a PostgreSQL
// server: a URL (or key=value DSN) of any database on it, as a user allowed to
// CREATE DATABASE. The value "private" makes PG start a private server even
// when a local one is reachable.
const EnvDatabaseURL = "TRACEGW_TEST_DATABASE_URL"

// localURL is tried when EnvDatabaseURL is unset.
const localURL = "postgres://postgres@127.0.0.1:5432/postgres?connect_timeout=2"

const installHint = "install PostgreSQL 15 (Debian/Ubuntu: apt-get install postgresql-15; " +
	"binaries expected in " + pgserver.BinDir + "), or set " + EnvDatabaseURL +
	" to a server where the user may CREATE DATABASE"

// templateLock serialises template builds across test binaries that share a
// server (pg_advisory_lock key; arbitrary).
const templateLock = int64(0x7472616365677701)

// server is the PostgreSQL server every PG call of this test binary uses.
type server struct {
	adminURL string        // URL of the maintenance database
	admin    *pgxpool.Pool // CREATE/DROP DATABASE
	template string        // migrated template database
}

var (
	sharedOnce sync.Once
	shared     *server
	sharedErr  error
)

// PG returns the URL of a fresh, empty, fully migrated database that belongs
// to this test alone and is dropped (WITH (FORCE)) when the test ends.
//
// The server comes from EnvDatabaseURL, else the local server at
// 127.0.0.1:5432 (user postgres, trust auth) if it answers within two
// seconds, else a private server that PG starts once per test binary from
// /usr/lib/postgresql/15/bin in a temporary directory, listening only on a
// Unix socket there. A private server is stopped and its directory removed
// by a small watcher process as soon as the test binary exits, however it
// exits. If no server can be found or started, PG fails the test with a
// message saying how to install PostgreSQL; it never skips.
//
// The migrations are applied once into a template database named after
// schema.Hash (tracegw_tpl_…), shared by every test binary using the same
// schema and kept on the server between runs; each PG call then costs one
// CREATE DATABASE … TEMPLATE. PG is safe to call from parallel tests. A test
// binary killed before its cleanups ran leaves tracegw_t_… databases behind;
// drop them by hand.
func PG(tb testing.TB) string {
	tb.Helper()
	s := sharedServer(tb)
	return s.clone(tb, s.template, "tracegw_t_")
}

// PGSeeded is PG for a database pre-filled by seed: seed runs once per key,
// schema and server, into a template database (tracegw_seed_<key>_…) that is
// kept on the server between runs, so expensive seeding (benchmarks with
// millions of rows) is paid once. Each call returns a private copy, dropped
// when the test ends. Change key when seed changes. seed receives the URL of
// the database being filled and must close every connection it opens.
func PGSeeded(tb testing.TB, key string, seed func(ctx context.Context, url string) error) string {
	tb.Helper()
	s := sharedServer(tb)
	if key == "" || strings.Trim(key, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" || len(key) > 24 {
		tb.Fatalf("testutil.PGSeeded: key %q: want 1-24 of [a-z0-9_]", key)
	}
	name := "tracegw_seed_" + key + "_" + schema.Hash()[:12]
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	if err := s.ensureTemplate(ctx, name, s.template, seed); err != nil {
		tb.Fatalf("testutil.PGSeeded %s: %v", key, err)
	}
	return s.clone(tb, name, "tracegw_t_")
}

// clone creates a copy of template and drops it when tb ends.
func (s *server) clone(tb testing.TB, template, prefix string) string {
	tb.Helper()
	name := prefix + randHex(8)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := s.admin.Exec(ctx, "CREATE DATABASE "+name+" TEMPLATE "+template); err != nil {
		tb.Fatalf("testutil.PG: create database from %s: %v", template, err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := s.admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			tb.Errorf("testutil.PG: drop database %s: %v", name, err)
		}
	})
	return withDatabase(s.adminURL, name)
}

func sharedServer(tb testing.TB) *server {
	tb.Helper()
	sharedOnce.Do(func() { shared, sharedErr = openServer() })
	if sharedErr != nil {
		tb.Fatalf("testutil.PG: %v", sharedErr)
	}
	return shared
}

func openServer() (*server, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	adminURL := os.Getenv(EnvDatabaseURL)
	switch {
	case adminURL == "private":
		u, err := startSocketServer(ctx)
		if err != nil {
			return nil, err
		}
		adminURL = u
	case adminURL != "":
		if err := ping(ctx, adminURL, 10*time.Second); err != nil {
			return nil, fmt.Errorf("%s: %w", EnvDatabaseURL, err)
		}
	case ping(ctx, localURL, 2*time.Second) == nil:
		adminURL = localURL
	default:
		u, err := startSocketServer(ctx)
		if err != nil {
			return nil, fmt.Errorf("no server at %s and none could be started: %w", localURL, err)
		}
		adminURL = u
	}
	cfg, err := pgxpool.ParseConfig(adminURL)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", EnvDatabaseURL, err)
	}
	cfg.MaxConns = 8
	admin, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, err
	}
	s := &server{adminURL: adminURL, admin: admin, template: "tracegw_tpl_" + schema.Hash()[:16]}
	if err := s.ensureTemplate(ctx, s.template, "template0", nil); err != nil {
		admin.Close()
		return nil, err
	}
	return s, nil
}

func ping(ctx context.Context, u string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

// ensureTemplate creates the template database name unless it exists: a copy
// of from, migrated with schema.Apply and then filled by seed (if not nil).
// It builds under a temporary name and renames when complete, so a build
// killed halfway never leaves a half-built template behind the real name; an
// advisory lock makes concurrent test binaries wait for the first build.
func (s *server) ensureTemplate(ctx context.Context, name, from string, seed func(context.Context, string) error) (err error) {
	// A dedicated session: closing it releases the advisory lock whatever happens.
	conn, err := pgx.Connect(ctx, s.adminURL)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", templateLock); err != nil {
		return fmt.Errorf("lock templates: %w", err)
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", name).Scan(&exists); err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if exists {
		return nil
	}
	tmp := name + "_b" + randHex(4)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+tmp+" TEMPLATE "+from); err != nil {
		return fmt.Errorf("create %s: %w", tmp, err)
	}
	defer func() {
		if err != nil {
			conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+tmp+" WITH (FORCE)")
		}
	}()
	if err := fill(ctx, withDatabase(s.adminURL, tmp), seed); err != nil {
		return fmt.Errorf("build %s: %w", name, err)
	}
	// RENAME waits (up to 5 s) for the sessions just closed to go away.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+tmp+" RENAME TO "+name); err != nil {
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "42P04" {
			// Built meanwhile by a binary whose admin connection was to
			// another database (advisory locks are per database): use theirs.
			conn.Exec(ctx, "DROP DATABASE IF EXISTS "+tmp+" WITH (FORCE)")
			return nil
		}
		return fmt.Errorf("rename %s: %w", tmp, err)
	}
	// No connections means CREATE DATABASE … TEMPLATE never finds it in use.
	if _, err := conn.Exec(ctx, "ALTER DATABASE "+name+" WITH IS_TEMPLATE true ALLOW_CONNECTIONS false"); err != nil {
		return fmt.Errorf("mark %s as template: %w", name, err)
	}
	return nil
}

func fill(ctx context.Context, u string, seed func(context.Context, string) error) error {
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		return err
	}
	err = schema.Apply(ctx, conn)
	if cerr := conn.Close(ctx); err == nil {
		err = cerr
	}
	if err == nil && seed != nil {
		err = seed(ctx, u)
	}
	return err
}

// withDatabase returns u (a URL or a key=value DSN) pointing at database db.
func withDatabase(u, db string) string {
	if strings.HasPrefix(u, "postgres://") || strings.HasPrefix(u, "postgresql://") {
		p, err := url.Parse(u)
		if err == nil {
			p.Path = "/" + db
			p.RawPath = ""
			return p.String()
		}
	}
	return u + " dbname=" + db // later keys win in a DSN
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// PrivatePG is a PostgreSQL server of one test, on its own port of 127.0.0.1
// and in its own temporary directory, that the test may stop and start again
// (fault tests: a restart costs errors, not data). Its methods call t.Fatal on
// failure, so call them from the test's goroutine.
type PrivatePG struct {
	tb   testing.TB
	dir  string // owned by the server's OS user; holds data/, the socket and the log
	port int
	w    *watcher
}

// PGPrivate initialises and starts a private server for tb, creates the
// database "tracegw" with the schema applied, and registers a cleanup that
// stops the server and removes its directory. It fails the test, saying how
// to install PostgreSQL, if the binaries are missing. Each call costs an
// initdb (about a second); prefer PG unless the test must stop the server.
func PGPrivate(tb testing.TB) *PrivatePG {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p := &PrivatePG{tb: tb}
	var err error
	if p.dir, err = initServer(ctx); err != nil {
		tb.Fatalf("testutil.PGPrivate: %v", err)
	}
	if p.w, err = startWatcher(p.dir); err != nil {
		os.RemoveAll(p.dir)
		tb.Fatalf("testutil.PGPrivate: %v", err)
	}
	tb.Cleanup(func() {
		if err := p.w.stop(); err != nil {
			tb.Errorf("testutil.PGPrivate: stop: %v", err)
		}
	})
	if p.port, err = freePort(); err != nil {
		tb.Fatalf("testutil.PGPrivate: %v", err)
	}
	conf := fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\n", p.port)
	if err := cluster(p.dir).AppendConf(conf); err != nil {
		tb.Fatalf("testutil.PGPrivate: %v", err)
	}
	p.Start()
	conn, err := pgx.Connect(ctx, withDatabase(p.URL(), "postgres"))
	if err == nil {
		_, err = conn.Exec(ctx, "CREATE DATABASE tracegw")
		conn.Close(ctx)
	}
	if err == nil {
		err = fill(ctx, p.URL(), nil)
	}
	if err != nil {
		tb.Fatalf("testutil.PGPrivate: create database: %v", err)
	}
	return p
}

// URL returns the URL of the server's migrated "tracegw" database. It stays
// the same across Stop and Start.
func (p *PrivatePG) URL() string {
	return "postgres://postgres@127.0.0.1:" + strconv.Itoa(p.port) + "/tracegw?sslmode=disable"
}

// Stop shuts the server down (fast mode: open sessions are cut off, as in
// an operator's restart) and returns when it has stopped.
func (p *PrivatePG) Stop() {
	p.tb.Helper()
	if out, err := pgCtl(p.dir, "stop", "-m", "fast"); err != nil {
		p.tb.Fatalf("testutil.PrivatePG.Stop: %v\n%s", err, out)
	}
}

// Start starts the server and returns when it accepts connections.
func (p *PrivatePG) Start() {
	p.tb.Helper()
	if out, err := pgCtl(p.dir, "start", "-l", cluster(p.dir).LogFile()); err != nil {
		log, _ := os.ReadFile(cluster(p.dir).LogFile())
		p.tb.Fatalf("testutil.PrivatePG.Start: %v\n%s\n%s", err, out, log)
	}
}

// startSocketServer starts the private server shared by a test binary: Unix
// socket only, removed by its watcher when the binary exits.
func startSocketServer(ctx context.Context) (string, error) {
	dir, err := initServer(ctx)
	if err != nil {
		return "", err
	}
	w, err := startWatcher(dir)
	if err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	keep = append(keep, w) // the pipe must outlive every test
	if err := cluster(dir).AppendConf("listen_addresses = ''\n"); err != nil {
		return "", err
	}
	if out, err := pgCtl(dir, "start", "-l", cluster(dir).LogFile()); err != nil {
		log, _ := os.ReadFile(cluster(dir).LogFile())
		return "", fmt.Errorf("start private server: %w\n%s\n%s", err, out, log)
	}
	return pgserver.SocketURL(dir, "postgres"), nil
}

// keep holds the watchers of servers that live as long as the test binary.
var keep []*watcher

// initServer creates a temporary directory owned by the user PostgreSQL runs
// as and initialises a cluster in dir/data, configured for throwaway data.
func initServer(ctx context.Context) (string, error) {
	if err := pgserver.CheckBinaries(); err != nil {
		return "", fmt.Errorf("PostgreSQL binaries not found (%v): %s", err, installHint)
	}
	dir, err := os.MkdirTemp("", "tracegw-pg-")
	if err != nil {
		return "", err
	}
	if err := pgserver.ChownToServerUser(dir); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("%w; %s", err, installHint)
	}
	if err := cluster(dir).Init(ctx, "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	conf := fmt.Sprintf("unix_socket_directories = %s\nfsync = off\nsynchronous_commit = off\n"+
		"full_page_writes = off\nmax_connections = 300\nshared_buffers = 128MB\n", pgserver.Quote(dir))
	if err := cluster(dir).AppendConf(conf); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// cluster is the private server in dir; pg_ctl gives up after 50 s, within
// pgCtl's minute.
func cluster(dir string) pgserver.Cluster {
	return pgserver.Cluster{Dir: dir, Wait: 50 * time.Second}
}

func pgCtl(dir string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return cluster(dir).Ctl(ctx, args...)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// watcher is a small shell process that waits for its stdin to close, then
// stops the server in dir (immediate mode: the data is thrown away) and
// removes dir. Its stdin is a pipe whose only writer is this process, so it
// closes on stop and also when the test binary exits, however it exits.
type watcher struct {
	cmd *exec.Cmd
	in  io.WriteCloser
}

const watcherScript = `cat >/dev/null; "$0" -D "$1/data" -m immediate -w stop >/dev/null 2>&1; rm -rf "$1"`

func startWatcher(dir string) (*watcher, error) {
	// pgserver.Command gives it its own process group: a ^C to the test run
	// must not kill the watcher before it has stopped the server (pg_ctl
	// detaches the server likewise).
	cmd := pgserver.Command(context.Background(), "/bin/sh", "-c", watcherScript, pgserver.Bin("pg_ctl"), dir)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start watcher: %w", err)
	}
	return &watcher{cmd: cmd, in: in}, nil
}

// stop makes the watcher stop the server and remove its directory, and waits.
func (w *watcher) stop() error {
	w.in.Close()
	err := w.cmd.Wait()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return fmt.Errorf("watcher: %w", err)
	}
	return err
}
