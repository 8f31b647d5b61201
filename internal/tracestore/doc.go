// Package tracestore saves, reads, replaces and lists traces, adds layers of
// function results, keeps unmatched requests ("404s"), and repairs traces
// whose operations did not finish: the behaviour behind the /traces,
// /function-results, /toplevels/{tlid}/traces, /recent-traces and
// /unmatched-requests routes. Objects are written before the index rows
// that describe them; an operation that writes in several steps marks the
// trace with an index.Token first, so that whatever it leaves half done,
// Repair (run by GC) finishes from the objects. It talks to Cloud Storage
// and the index through small interfaces that cmd satisfies with
// objstore.GCS and index.DB, and never calls time.Now. A save's body that
// is already the canonical document is stored as the client compressed it
// (SaveReceived); large traces can skip the gateway's data path through
// direct uploads (UploadSlot, Finalize: direct.go), which sign a create-only
// PUT and then validate the object exactly as a save validates a body.
package tracestore
