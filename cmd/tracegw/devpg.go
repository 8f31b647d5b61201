package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tracegw/tracegw/internal/pgserver"
)

// devPG is the private PostgreSQL server of `tracegw dev`: a cluster in
// <data-dir>/pg, listening only on a Unix socket in that directory, kept
// between runs. As root it runs as the OS user postgres (initdb and
// postgres refuse root).
//
// Its one role is a superuser with trust authentication, so whoever can
// open the socket owns the server (and, through COPY … TO PROGRAM, the OS
// account it runs as). Only the server's OS user may: the directory that
// holds the socket is mode 0700 and the socket itself 0700
// (unix_socket_permissions). As a normal user that is the developer alone;
// as root, postgres and root (which passes any permission check).
type devPG struct {
	dir string
	pg  pgserver.Cluster
}

// devPGConf is what startDevPG makes sure the cluster's configuration says,
// whatever an earlier version wrote: no TCP, the socket in the private
// directory, usable by the owner only.
func devPGConf(dir string) string {
	return fmt.Sprintf("\n# tracegw dev: only the owner may connect\nlisten_addresses = ''\nunix_socket_directories = %s\nunix_socket_permissions = 0700\n",
		pgserver.Quote(dir))
}

// startDevPG initialises the cluster on first use, starts it and returns
// its URL.
func startDevPG(ctx context.Context, dataDir string) (*devPG, string, error) {
	dir, err := filepath.Abs(filepath.Join(dataDir, "pg"))
	if err != nil {
		return nil, "", err
	}
	if len(dir) > 90 {
		return nil, "", fmt.Errorf("--data-dir: the socket path %s/.s.PGSQL.5432 is too long for a Unix socket; use a shorter --data-dir or set DATABASE_URL", dir)
	}
	if err := pgserver.CheckBinaries(); err != nil {
		return nil, "", fmt.Errorf("PostgreSQL 15 server binaries not found in %s (apt-get install postgresql-15), or set DATABASE_URL", pgserver.BinDir)
	}
	p := &devPG{dir: dir, pg: pgserver.Cluster{Dir: dir, Wait: 60 * time.Second}}
	if _, err := os.Stat(filepath.Join(p.pg.DataDir(), "PG_VERSION")); err != nil {
		if err := p.init(ctx); err != nil {
			return nil, "", err
		}
	}
	// A previous run killed hard may have left the server running: stop it first.
	_, _ = p.pg.Stop(ctx, "fast")
	// Clusters made by earlier versions had a world-enterable directory and
	// a world-writable socket: tighten both before every start.
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, "", fmt.Errorf("restrict %s: %w", dir, err)
	}
	if err := p.ensureConf(); err != nil {
		return nil, "", err
	}
	if out, err := p.pg.Start(ctx); err != nil {
		return nil, "", fmt.Errorf("start PostgreSQL in %s: %w\n%s", dir, err, out)
	}
	return p, pgserver.SocketURL(dir, "postgres"), nil
}

func (p *devPG) init(ctx context.Context) error {
	if err := os.MkdirAll(p.dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(p.dir, 0o700); err != nil {
		return err
	}
	if err := pgserver.ChownToServerUser(p.dir); err != nil {
		return err
	}
	if err := p.pg.Init(ctx); err != nil {
		hint := ""
		if os.Geteuid() == 0 {
			hint = "\nthe server runs as the OS user postgres, which must be able to reach " + p.dir +
				" (every parent directory needs o+x): pick a --data-dir it can reach (e.g. under /tmp) or set DATABASE_URL"
		}
		return fmt.Errorf("%w%s", err, hint)
	}
	return nil
}

// ensureConf appends devPGConf to postgresql.conf unless it ends with it
// already (a later line wins over an earlier one).
func (p *devPG) ensureConf() error {
	b, err := os.ReadFile(p.pg.ConfFile())
	if err != nil {
		return err
	}
	conf := devPGConf(p.dir)
	if strings.HasSuffix(string(b), conf) {
		return nil
	}
	return p.pg.AppendConf(conf)
}

// Stop shuts the server down (fast: rolls back open transactions).
func (p *devPG) Stop() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if out, err := p.pg.Stop(ctx, "fast"); err != nil {
		return fmt.Errorf("stop PostgreSQL: %w\n%s", err, out)
	}
	return nil
}
