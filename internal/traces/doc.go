// Package traces is what a trace is: the typed IDs (CanvasID, TraceID,
// TLID, JobID), the document and its msgpack/JSON encodings, the storage
// format of its objects (stored.go), the object layout
// ({canvasID}/traces/{traceID}), the index's records (Record, Summary, Job),
// ObjectInfo and the shared error vocabulary. It does no I/O and starts no
// goroutines: the services that save, hold, expire and delete traces live
// in their own packages and import it.
package traces
