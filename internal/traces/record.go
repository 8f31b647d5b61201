package traces

import "time"

// Record is a trace's entry in the index: what listing, reading and GC need
// without touching the object.
type Record struct {
	Canvas     CanvasID
	ID         TraceID
	RootTLID   TLID
	TLIDs      []TLID    // every toplevel the trace (and its layers) touched
	Timestamp  time.Time // the trace's timestamp (millisecond precision)
	Generation int64     // the object generation the rows describe
	CustomTime time.Time // the oldest customTime tracegw set on the object and its layers
	Layers     int       // number of layer objects (1..Layers)
	Held       bool
}

// Summary is one item of a toplevel's trace list, newest first.
type Summary struct {
	ID        TraceID
	Timestamp time.Time
	RootTLID  TLID
	Held      bool
}

// UnmatchedEntry is an unmatched request ("404") in the index: its route,
// its ID (also its object name's last part) and when it arrived.
type UnmatchedEntry struct {
	Canvas                 CanvasID
	ID                     TraceID
	Module, Path, Modifier string
	Timestamp              time.Time
}
