// Package index is the PostgreSQL index of traces (pgx/v5): which traces
// exist, which toplevels each touched, and which toplevels are live for GC.
// Every query leads with canvas_id (except the admin lookup by trace ID,
// GC's discoveries across canvases: due canvases, unfinished operations,
// forgotten toplevels; and the few global rows of policy.go and health.go:
// the retention policy record, the GC pass history and the notification
// progress), so the index can be partitioned by canvas. The rules that keep
// keepers safe under concurrency live here, in SQL: the toplevels
// bookkeeping (upsertToplevels, FreshWindow, RenewSlack), GC's conditional
// writes (rev), generation-aware writes, operation tokens (Token) and
// canvas tombstones.
// It translates PostgreSQL errors into the traces sentinels once, here; it
// never touches Cloud Storage and never calls time.Now.
package index
