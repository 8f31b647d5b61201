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

// Summary is one item of a trace list (a toplevel's, a batch's, a
// search's), newest first.
type Summary struct {
	ID        TraceID
	Timestamp time.Time
	RootTLID  TLID
	Held      bool
	// Kept says why the trace is still stored; lists that do not judge
	// traces leave it zero.
	Kept Kept
}

// Kept is why a trace is still stored and until when, as the retention
// policy promises it now (judged from the index alone).
type Kept struct {
	// LatestFor are the live toplevels the trace touched among whose
	// newest keep-N traces it is: GC keeps it for them however old it is.
	// Ascending; nil when none.
	LatestFor []TLID
	// Recent is true while its customTime plus the retention GCS may apply
	// is still ahead.
	Recent bool
	// ExpiresAfter is the earliest moment the bucket may delete the trace
	// if nothing changes (customTime plus that retention); zero while it is
	// held or among the latest, when nothing deletes it.
	ExpiresAfter time.Time
}

// Reasons a trace is kept, in the order KeptBecause lists them.
const (
	KeptLatest = "latest"
	KeptRecent = "recent"
	KeptHeld   = "held"
)

// KeptBecause lists why a trace with k, held or not, is kept: a subset of
// KeptLatest, KeptRecent and KeptHeld in that order; empty (not nil) when
// nothing keeps it.
func (k Kept) KeptBecause(held bool) []string {
	out := make([]string, 0, 3)
	if len(k.LatestFor) > 0 {
		out = append(out, KeptLatest)
	}
	if k.Recent {
		out = append(out, KeptRecent)
	}
	if held {
		out = append(out, KeptHeld)
	}
	return out
}

// UnmatchedEntry is an unmatched request ("404") in the index: its route,
// its ID (also its object name's last part) and when it arrived.
type UnmatchedEntry struct {
	Canvas                 CanvasID
	ID                     TraceID
	Module, Path, Modifier string
	Timestamp              time.Time
}
