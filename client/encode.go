package client

import (
	"fmt"

	"github.com/tracegw/tracegw/client/internal/wire"
)

// The msgpack documents the client sends, byte for byte what the gateway's
// own encoder writes for the same document: map keys in a fixed order, IDs
// as unsigned integers, values embedded as they are (an empty Value as
// nil).

// Pre-encoded msgpack keys of the documents.
const (
	mpTraceID         = "\xa7traceID"
	mpRootTLID        = "\xa8rootTLID"
	mpTLIDs           = "\xa5tlids"
	mpTimestamp       = "\xa9timestamp"
	mpInput           = "\xa5input"
	mpFunctionResults = "\xaffunctionResults"
	mpTLID            = "\xa4tlid"
	mpExprID          = "\xa6exprID"
	mpFnName          = "\xa6fnName"
	mpHashVersion     = "\xabhashVersion"
	mpArgHash         = "\xa7argHash"
	mpValue           = "\xa5value"
	mpModule          = "\xa6module"
	mpPath            = "\xa4path"
	mpModifier        = "\xa8modifier"
)

// appendTrace appends t as a msgpack map: traceID (a string; omitted when
// empty), rootTLID, tlids, timestamp (a timestamp extension; omitted when
// zero), input, functionResults. A malformed t.ID wraps ErrInvalid.
func appendTrace(dst []byte, t *Trace) ([]byte, error) {
	var id wire.UUID
	if t.ID != "" {
		var err error
		if id, err = wire.ParseV7("traceID", string(t.ID)); err != nil {
			return nil, fmt.Errorf("traceID %q: %w: %v", t.ID, ErrInvalid, err)
		}
	}
	n := 4
	if !id.IsZero() {
		n++
	}
	if !t.Timestamp.IsZero() {
		n++
	}
	dst = wire.AppendMapHeader(dst, n)
	if !id.IsZero() {
		dst = append(dst, mpTraceID...)
		dst = id.AppendText(wire.AppendStringHeader(dst, 36))
	}
	dst = append(dst, mpRootTLID...)
	dst = wire.AppendUint(dst, uint64(t.RootTLID))
	dst = appendTLIDs(append(dst, mpTLIDs...), t.TLIDs)
	if !t.Timestamp.IsZero() {
		dst = append(dst, mpTimestamp...)
		dst = wire.AppendTime(dst, t.Timestamp)
	}
	dst = appendInput(append(dst, mpInput...), t.Input)
	return appendResults(append(dst, mpFunctionResults...), t.FunctionResults), nil
}

// appendLayer appends the body of AddFunctionResults.
func appendLayer(dst []byte, tlids []TLID, results []FunctionResult) []byte {
	dst = wire.AppendMapHeader(dst, 2)
	dst = appendTLIDs(append(dst, mpTLIDs...), tlids)
	return appendResults(append(dst, mpFunctionResults...), results)
}

// appendUnmatched appends the body of SaveUnmatched.
func appendUnmatched(dst []byte, u Unmatched) []byte {
	dst = wire.AppendMapHeader(dst, 4)
	dst = wire.AppendString(append(dst, mpModule...), u.Module)
	dst = wire.AppendString(append(dst, mpPath...), u.Path)
	dst = wire.AppendString(append(dst, mpModifier...), u.Modifier)
	return appendInput(append(dst, mpInput...), u.Input)
}

func appendTLIDs(dst []byte, ids []TLID) []byte {
	dst = wire.AppendArrayHeader(dst, len(ids))
	for _, id := range ids {
		dst = wire.AppendUint(dst, uint64(id))
	}
	return dst
}

func appendValue(dst []byte, v Value) []byte {
	if len(v) == 0 {
		return append(dst, 0xc0)
	}
	return append(dst, v...)
}

func appendInput(dst []byte, in []InputVar) []byte {
	dst = wire.AppendArrayHeader(dst, len(in))
	for _, v := range in {
		dst = append(dst, 0x92)
		dst = wire.AppendString(dst, v.Name)
		dst = appendValue(dst, v.Value)
	}
	return dst
}

func appendResults(dst []byte, rs []FunctionResult) []byte {
	dst = wire.AppendArrayHeader(dst, len(rs))
	for i := range rs {
		fr := &rs[i]
		dst = append(dst, 0x86)
		dst = wire.AppendUint(append(dst, mpTLID...), uint64(fr.TLID))
		dst = wire.AppendUint(append(dst, mpExprID...), fr.ExprID)
		dst = wire.AppendString(append(dst, mpFnName...), fr.FnName)
		dst = wire.AppendInt(append(dst, mpHashVersion...), fr.HashVersion)
		dst = wire.AppendString(append(dst, mpArgHash...), fr.ArgHash)
		dst = appendValue(append(dst, mpValue...), fr.Value)
	}
	return dst
}
