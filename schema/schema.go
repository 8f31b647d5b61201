package schema

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"sort"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/tern/v2/migrate"
)

//go:embed migrations/*.sql
var files embed.FS

// VersionTable is the table in which tern records the applied version.
const VersionTable = "public.tracegw_schema_version"

// Migrations returns the embedded migration files, named NNNN_name.sql.
func Migrations() fs.FS {
	sub, err := fs.Sub(files, "migrations")
	if err != nil {
		panic(err) // the embed pattern guarantees the directory
	}
	return sub
}

// Hash returns a hex digest of every migration's name and content: two
// binaries with the same Hash build the same schema (testutil names its
// template databases after it).
func Hash() string {
	h := sha256.New()
	names, err := fs.Glob(Migrations(), "*.sql")
	if err != nil {
		panic(err)
	}
	sort.Strings(names)
	for _, n := range names {
		b, err := fs.ReadFile(Migrations(), n)
		if err != nil {
			panic(err)
		}
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(b))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// Apply brings the database conn is connected to up to the latest embedded
// migration. It is idempotent. tern holds a session-level advisory lock while
// it creates its version table and while it migrates, so concurrent Apply
// calls (several replicas of serve starting at once) run one after the other
// and the later ones find nothing to do. A database already at a newer
// version than this binary knows is left alone (migrations only add, so an
// older binary still works during a rolling deploy). Apply does not close
// conn and must not be called concurrently on the same conn.
func Apply(ctx context.Context, conn *pgx.Conn) error {
	m, err := migrate.NewMigratorEx(ctx, conn, VersionTable, &migrate.MigratorOptions{})
	if err != nil {
		return fmt.Errorf("apply schema: create version table: %w", err)
	}
	if err := m.LoadMigrations(Migrations()); err != nil {
		return fmt.Errorf("apply schema: load migrations: %w", err)
	}
	latest := int32(len(m.Migrations))
	cur, err := m.GetCurrentVersion(ctx)
	if err != nil {
		return fmt.Errorf("apply schema: read version: %w", err)
	}
	if cur >= latest {
		return nil
	}
	// MigrateTo rereads the version under the advisory lock, so a concurrent
	// Apply that got there first leaves nothing to do.
	if err := m.MigrateTo(ctx, latest); err != nil {
		// A concurrent, newer binary may have migrated past us meanwhile.
		if v, verr := m.GetCurrentVersion(ctx); verr == nil && v >= latest {
			return nil
		}
		return fmt.Errorf("apply schema: migrate to version %d: %w", latest, err)
	}
	return nil
}
