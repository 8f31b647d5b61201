package schema_test

import (
	"context"
	"io/fs"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/schema"
	"github.com/tracegw/tracegw/testutil"
)

func connect(t *testing.T, url string) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func version(t *testing.T, conn *pgx.Conn) int32 {
	t.Helper()
	var v int32
	if err := conn.QueryRow(t.Context(), "SELECT version FROM "+schema.VersionTable).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestApplyConcurrent starts from an empty database and lets several
// "replicas" apply the schema at once: tern's advisory lock serialises them,
// every one succeeds, and applying again changes nothing.
func TestApplyConcurrent(t *testing.T) {
	t.Parallel()
	url := testutil.PG(t)
	conn := connect(t, url)
	// An empty database: every table the migrations made goes, whatever
	// later migrations add.
	if _, err := conn.Exec(t.Context(), "DROP SCHEMA public CASCADE; CREATE SCHEMA public"); err != nil {
		t.Fatal(err)
	}
	conns := make([]*pgx.Conn, 6)
	for i := range conns {
		conns[i] = connect(t, url)
	}
	var wg sync.WaitGroup
	errs := make([]error, len(conns))
	for i, c := range conns {
		wg.Go(func() { errs[i] = schema.Apply(t.Context(), c) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Apply #%d: %v", i, err)
		}
	}
	names, err := fs.Glob(schema.Migrations(), "*.sql")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := version(t, conn), int32(len(names)); got != want {
		t.Errorf("version = %d, want %d", got, want)
	}
	if err := schema.Apply(t.Context(), conn); err != nil {
		t.Errorf("Apply again: %v", err)
	}
	var tables int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'
		AND tablename IN ('traces', 'trace_tlids', 'toplevels')`).Scan(&tables); err != nil || tables != 3 {
		t.Errorf("tables = %d, %v; want 3", tables, err)
	}
}

// TestApplyNewerDatabase: a binary older than the database (rolling deploy)
// leaves the schema alone instead of failing or migrating down.
func TestApplyNewerDatabase(t *testing.T) {
	t.Parallel()
	conn := connect(t, testutil.PG(t))
	if _, err := conn.Exec(t.Context(), "UPDATE "+schema.VersionTable+" SET version = 99"); err != nil {
		t.Fatal(err)
	}
	if err := schema.Apply(t.Context(), conn); err != nil {
		t.Errorf("Apply on a newer database: %v", err)
	}
	if v := version(t, conn); v != 99 {
		t.Errorf("version = %d, want 99 (untouched)", v)
	}
}

func TestHashStable(t *testing.T) {
	if a, b := schema.Hash(), schema.Hash(); a != b || len(a) != 64 {
		t.Errorf("Hash = %q, %q", a, b)
	}
}
