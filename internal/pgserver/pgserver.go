package pgserver

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// BinDir is where Debian's PostgreSQL 15 server binaries live
// (apt-get install postgresql-15).
const BinDir = "/usr/lib/postgresql/15/bin"

// Bin is the path of the server binary name (initdb, pg_ctl, psql, …).
func Bin(name string) string { return filepath.Join(BinDir, name) }

// CheckBinaries returns os.Stat's error when initdb is not installed.
func CheckBinaries() error {
	_, err := os.Stat(Bin("initdb"))
	return err
}

// Command runs a server binary as the OS user postgres when we are root,
// else as ourselves. It gets its own process group, so a Ctrl-C to the
// program does not also kill the pg_ctl it runs to stop the server
// cleanly.
func Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	var cmd *exec.Cmd
	if os.Geteuid() == 0 {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", "postgres", "--", name}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, name, args...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

// ChownToServerUser gives dir to the OS user postgres when we are root (the
// server runs as postgres then); else it does nothing.
func ChownToServerUser(dir string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return fmt.Errorf("running as root needs the OS user postgres: %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(dir, uid, gid)
}

// Quote is s as a string literal of postgresql.conf.
func Quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// SocketURL is the URL of database db of a server whose Unix socket is in
// dir, as its superuser postgres.
func SocketURL(dir, db string) string {
	return "postgres://postgres@/" + db + "?host=" + url.QueryEscape(dir)
}

// Cluster is a PostgreSQL cluster kept in Dir: the data in Dir/data, the
// server's log in Dir/log.
type Cluster struct {
	Dir string
	// Wait is how long pg_ctl waits for the server to start or stop (its
	// -t); 0 means a minute.
	Wait time.Duration
}

// DataDir is the cluster's data directory, Dir/data.
func (c Cluster) DataDir() string { return filepath.Join(c.Dir, "data") }

// LogFile is the server's log, Dir/log.
func (c Cluster) LogFile() string { return filepath.Join(c.Dir, "log") }

// ConfFile is the cluster's postgresql.conf.
func (c Cluster) ConfFile() string { return filepath.Join(c.DataDir(), "postgresql.conf") }

// Init runs initdb into DataDir: superuser postgres, trust authentication,
// UTF8, locale C, and extra initdb arguments (e.g. --no-sync). Dir must
// exist and, as root, belong to postgres (ChownToServerUser). The error
// carries initdb's output.
func (c Cluster) Init(ctx context.Context, extra ...string) error {
	args := append([]string{"-D", c.DataDir(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"}, extra...)
	if out, err := Command(ctx, Bin("initdb"), args...).CombinedOutput(); err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}

// AppendConf appends lines to postgresql.conf; a later setting wins over
// an earlier one.
func (c Cluster) AppendConf(lines string) error {
	f, err := os.OpenFile(c.ConfFile(), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(lines)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Ctl runs pg_ctl on the cluster, waiting (-w) up to Wait, and returns its
// output.
func (c Cluster) Ctl(ctx context.Context, args ...string) ([]byte, error) {
	wait := c.Wait
	if wait == 0 {
		wait = time.Minute
	}
	args = append([]string{"-D", c.DataDir(), "-w", "-t", strconv.Itoa(int(wait / time.Second))}, args...)
	return Command(ctx, Bin("pg_ctl"), args...).CombinedOutput()
}

// Start starts the server, logging to LogFile, and returns pg_ctl's output
// once it accepts connections.
func (c Cluster) Start(ctx context.Context) ([]byte, error) {
	return c.Ctl(ctx, "start", "-l", c.LogFile())
}

// Stop shuts the server down in pg_ctl's mode (fast: open sessions are
// cut off and their transactions rolled back; immediate: no shutdown
// checkpoint) and returns pg_ctl's output once it has stopped.
func (c Cluster) Stop(ctx context.Context, mode string) ([]byte, error) {
	return c.Ctl(ctx, "stop", "-m", mode)
}
