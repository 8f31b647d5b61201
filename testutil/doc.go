// Package testutil starts the real services tests need: PG and PGPrivate
// give PostgreSQL databases with the schema applied. Helpers take a
// testing.TB, call t.Fatal on setup errors (never skip) and clean up with
// t.Cleanup. testutil imports schema, internal/pgserver (which runs its
// private PostgreSQL servers and imports the standard library only) and
// libraries, never the internal packages under test, so any package's
// tests can use it without an import cycle.
package testutil
