package client

import (
	"fmt"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tracegw/tracegw/client/internal/wire"
)

// CanvasID names a canvas: a UUID in canonical lowercase 8-4-4-4-12 form.
type CanvasID string

// TraceID names a trace: a version-7 UUID in canonical lowercase form whose
// first 48 bits are the Unix milliseconds of the trace's timestamp.
type TraceID string

// TLID identifies a toplevel (a handler or a function).
type TLID uint64

// NewTraceID returns a fresh UUIDv7 for time t, as Save generates one.
func NewTraceID(t time.Time) TraceID { return TraceID(wire.NewV7(t).String()) }

// Time returns the millisecond time embedded in a UUIDv7, or the zero time
// when id is not one.
func (id TraceID) Time() time.Time {
	v, err := wire.ParseV7("traceID", string(id))
	if err != nil {
		return time.Time{}
	}
	return v.Time()
}

// Trace is a trace document (the Trace schema of the repository's
// api/openapi.yaml; docs/api.md explains its fields).
type Trace struct {
	// ID is optional on save: Save generates a UUIDv7 when it is empty.
	ID TraceID
	// RootTLID is the handler (or function) that was executed; required.
	RootTLID TLID
	// TLIDs are the toplevels touched during execution; the gateway adds
	// RootTLID when missing.
	TLIDs []TLID
	// Timestamp is optional on save: the time embedded in ID when zero.
	Timestamp       time.Time
	Input           []InputVar
	FunctionResults []FunctionResult
}

// InputVar is one ordered (name, value) pair of a trace's input.
type InputVar struct {
	Name  string
	Value Value
}

// FunctionResult is the result of one function call.
type FunctionResult struct {
	TLID        TLID
	ExprID      uint64
	FnName      string
	HashVersion int64
	ArgHash     string
	Value       Value
}

// Value is one opaque value held as its msgpack encoding; the gateway
// stores it byte for byte. An empty Value is msgpack nil.
type Value []byte

// EncodeValue returns the msgpack encoding of v as a Value.
func EncodeValue(v any) (Value, error) {
	b, err := msgpack.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode value: %w", err)
	}
	return Value(b), nil
}

// MustValue is EncodeValue that panics on error, for literals in tests and
// examples.
func MustValue(v any) Value {
	b, err := EncodeValue(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Decode unmarshals the msgpack value into dst (a pointer).
func (v Value) Decode(dst any) error {
	if len(v) == 0 {
		return msgpack.Unmarshal([]byte{0xc0}, dst)
	}
	return msgpack.Unmarshal(v, dst)
}

// Saved is the outcome of Save or Replace.
type Saved struct {
	ID         TraceID
	Generation int64
	// Created is false when the gateway already held this exact trace: a
	// retry of a save that had landed (HTTP 200 instead of 201).
	Created bool
}

// Summary is one item of a trace list (a toplevel's, a batch's, a
// search's), newest first.
type Summary struct {
	ID        TraceID
	Timestamp time.Time
	RootTLID  TLID
	Held      bool
	// Kept says why the trace is still stored and until when.
	Kept Kept
}

// Why a trace is kept (Kept.Because).
const (
	KeptLatest = "latest" // among the newest keep-N traces of a live toplevel it touched
	KeptRecent = "recent" // its customTime plus the retention has not passed
	KeptHeld   = "held"   // it is held
)

// Kept is why a trace is still stored and until when, as the gateway
// judges it from its index and retention policy.
type Kept struct {
	// Because is a subset of KeptLatest, KeptRecent and KeptHeld, in that
	// order; empty when nothing keeps the trace any more.
	Because []string
	// LatestFor are the live toplevels the trace is among the newest
	// keep-N traces of.
	LatestFor []TLID
	// ExpiresAfter is the earliest moment the bucket may delete the trace
	// if nothing changes; zero while it is held or latest.
	ExpiresAfter time.Time
}

// Hold is a held trace.
type Hold struct {
	ID     TraceID
	Reason string
	HeldAt time.Time
	// Until is when the hold ends by itself (zero: never).
	Until time.Time
	// HeldBy is who placed it (the subject of the token used); "" when
	// unknown.
	HeldBy string
}

// HoldOptions are what HoldWith asks for besides the trace.
type HoldOptions struct {
	// Reason replaces the recorded reason unless it is empty.
	Reason string
	// Until ends the hold by itself at that time; For ends it that long
	// after the gateway's now (whole seconds are sent). At most one of
	// Until, For and NoEnd; none: a new hold has no end and a repeated one
	// keeps its end. The gateway takes ends up to 400 days ahead.
	Until time.Time
	For   time.Duration
	// NoEnd removes a repeated hold's end.
	NoEnd bool
}

// CanvasPolicy is a canvas's retention settings.
type CanvasPolicy struct {
	// KeepPerToplevel is how many of the newest traces of each live
	// toplevel of the canvas are kept however old.
	KeepPerToplevel int
	// IsDefault is true when the canvas has no keep of its own (the
	// server's default applies).
	IsDefault bool
	// RenewalPending (SetPolicy only) is true when a raise's renewal of the
	// traces it newly keeps did not finish before the answer; the
	// gateway's next GC pass completes it.
	RenewalPending bool
}

// SearchQuery filters Search. The time range is on the time embedded in
// each trace ID (UUIDv7), at millisecond precision: Since <= t < Until.
type SearchQuery struct {
	Since, Until time.Time // zero: unbounded
	// TLID, if not zero, keeps the traces that touched that toplevel.
	TLID TLID
	// Prefix keeps the trace IDs starting with these hex digits.
	Prefix string
	// Limit is the page size: 0 is the gateway's default (50), at most
	// 1000.
	Limit int
	// Cursor continues after the page that returned it as NextCursor.
	Cursor string
}

// SearchPage is one page of Search, newest first.
type SearchPage struct {
	Traces []Summary
	// NextCursor continues the search (SearchQuery.Cursor); "" on the last
	// page.
	NextCursor string
}

// Unmatched is a request that hit no handler (a "404").
type Unmatched struct {
	Module, Path, Modifier string
	Input                  []InputVar
}

// UnmatchedEntry is one listed unmatched request: the most recent of its
// (module, path, modifier).
type UnmatchedEntry struct {
	Module, Path, Modifier string
	Timestamp              time.Time
	ID                     TraceID
}

// Layer is the answer to AddFunctionResults.
type Layer struct {
	ID TraceID
	// N is the layer's number: later layers win.
	N int
}
