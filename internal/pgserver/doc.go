// Package pgserver runs a private PostgreSQL server with the installed
// PostgreSQL 15 server binaries (BinDir): a Cluster is a directory holding
// the cluster's data (data/), its log (log) and, when configured there,
// its Unix socket; Init, AppendConf, Start and Stop wrap initdb, the
// cluster's postgresql.conf and pg_ctl. Run as root, the binaries run as
// the OS user postgres (initdb and postgres refuse root).
//
// `tracegw dev` keeps such a server between runs (cmd/tracegw, devpg.go);
// testutil starts throwaway ones for tests. What differs between them —
// where the directory lives, the configuration, who removes it — stays
// with them. pgserver imports the standard library only, so testutil may
// import it without a cycle.
package pgserver
