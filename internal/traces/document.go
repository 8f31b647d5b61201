package traces

import "time"

// Trace is the trace document of the API: the input of one execution of a
// handler (or function) and the results of every function called on the way.
type Trace struct {
	ID              TraceID
	RootTLID        TLID
	TLIDs           []TLID // toplevels touched (callgraph); always contains RootTLID after Normalize
	Timestamp       time.Time
	Input           []InputVar
	FunctionResults []FunctionResult
}

// InputVar is one ordered (name, value) pair of a trace's input.
type InputVar struct {
	Name  string
	Value Value
}

// FunctionResult is the result of one function call. Layers merge per
// (TLID, ExprID, FnName, ArgHash), the later layer winning.
type FunctionResult struct {
	TLID        TLID
	ExprID      uint64
	FnName      string
	HashVersion int64
	ArgHash     string
	Value       Value
}

// Value is one opaque value, held as its msgpack encoding: a value saved as
// msgpack reads back byte-identical. JSON converts to and from it by the
// mapping documented in value.go.
type Value []byte

// Limits bound every decoder before it allocates. Zero fields take the
// defaults of DefaultLimits.
type Limits struct {
	MaxBody            int64 // bytes of a request body
	MaxTLIDs           int   // tlids per trace or layer
	MaxFunctionResults int   // function results per trace or layer
	MaxDepth           int   // nesting depth of a value

	// SkipUnknown makes the document decoders skip a top-level key they do
	// not know. False (request bodies) refuses it: a misspelt field would
	// otherwise lose its data silently. Readers of stored objects and of
	// responses set it, since a later version may add keys.
	SkipUnknown bool

	// stored marks the decoding of our own objects (DecodeStored*): their
	// msgpack strings are not checked for UTF-8, so objects written before
	// requests were checked stay readable.
	stored bool
}

// DefaultLimits are the API's default limits (api/openapi.yaml).
var DefaultLimits = Limits{
	MaxBody:            16 << 20,
	MaxTLIDs:           10_000,
	MaxFunctionResults: 100_000,
	MaxDepth:           128,
}

// OrDefault fills zero fields from DefaultLimits.
func (l Limits) OrDefault() Limits {
	if l.MaxBody == 0 {
		l.MaxBody = DefaultLimits.MaxBody
	}
	if l.MaxTLIDs == 0 {
		l.MaxTLIDs = DefaultLimits.MaxTLIDs
	}
	if l.MaxFunctionResults == 0 {
		l.MaxFunctionResults = DefaultLimits.MaxFunctionResults
	}
	if l.MaxDepth == 0 {
		l.MaxDepth = DefaultLimits.MaxDepth
	}
	return l
}
