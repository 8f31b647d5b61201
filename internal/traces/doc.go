// Package traces owns the trace document and everything that names a trace:
// the typed IDs (CanvasID, TraceID, TLID), the document and its msgpack/JSON
// encodings, the object layout ({canvasID}/traces/{traceID}), ObjectInfo and
// the shared error vocabulary. It also holds the Service that saves, reads and
// lists traces through two small interfaces (objects and index) that cmd
// satisfies with objstore.GCS and index.DB; traces imports neither.
package traces
