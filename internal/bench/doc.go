// Package bench is `tracegw bench`: it measures a gateway against what the
// storage and database allow on the same machine and holds the figures to
// the project's targets. Run builds a private stack (PostgreSQL through
// Options.Postgres, the emulator and the gateway as child processes of
// Options.Executable), drives it through the Go client, and returns a
// Report that renders as text or JSON. It talks only to loopback and
// removes everything it created; it never reads the environment or flags
// (cmd does). The notify figures run the consumer over the in-process
// notify.Queue and over the official Pub/Sub emulator (PubSubEmulatorBin),
// next to a bare Receive that only acks. The tables the report holds are data: a row of the saves
// table is saveSizes × saveConcs, a read query an entry of readQueries, a
// target an entry of targets.
package bench
