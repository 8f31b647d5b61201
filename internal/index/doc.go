// Package index is the PostgreSQL index of traces (pgx/v5): which traces
// exist, which toplevels each touched, and which toplevels are live for GC.
// Every query leads with canvas_id (except the admin lookup by trace ID,
// GC's discoveries across canvases: due canvases, unfinished operations,
// ended holds; and the few global rows of policy.go and health.go:
// the retention policy record, the GC pass history and the notification
// progress), so the index can be partitioned by canvas. The rules that keep
// keepers safe under concurrency live here, in SQL: the toplevels
// bookkeeping (upsertToplevels, FreshWindow, RenewSlack), GC's conditional
// writes (rev), generation-aware writes, operation tokens (Token) and
// canvas tombstones. So do the listings' judgement of each trace (kept.go:
// latest for which live toplevels, recent, when it may expire), computed in
// the list's own statement, and a canvas's own keep-N (canvaspolicy.go).
// It translates PostgreSQL errors into the traces sentinels once, here; it
// never touches Cloud Storage and never calls time.Now.
package index
