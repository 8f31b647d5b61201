// Package schema owns the PostgreSQL schema of the trace index: numbered SQL
// migrations embedded into the binary (migrations/NNNN_name.sql) and Apply,
// which runs the pending ones with tern. It imports no tracegw package and
// holds no queries: those live in internal/index. Migrations only ever add to
// the schema, so a binary older than the database keeps working.
package schema
