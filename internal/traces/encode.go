package traces

import (
	"slices"
	"strconv"
)

// Encoders of the document codec: the msgpack form (stored and served)
// and the JSON form of the API (docs/api.md).

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

// AppendTraceMsgpack appends t as a msgpack map with the API's keys in a
// fixed order: traceID (a string; omitted when zero), rootTLID, tlids,
// timestamp (a timestamp extension; omitted when zero), input,
// functionResults. IDs are unsigned integers and values are embedded
// byte for byte (an empty Value as nil), so DecodeTrace reads back t.
func AppendTraceMsgpack(dst []byte, t *Trace) []byte {
	// One allocation of the final size: a growing buffer of a 16 MiB trace
	// would hold its old and new arrays at once, several times over.
	dst = slices.Grow(dst, 64+len(mpTraceID)+38+len(mpTimestamp)+15+
		tlidsSize(t.TLIDs)+inputSize(t.Input)+resultsSize(t.FunctionResults))
	n := 4
	if !t.ID.IsZero() {
		n++
	}
	if !t.Timestamp.IsZero() {
		n++
	}
	dst = appendMapHeader(dst, n)
	if !t.ID.IsZero() {
		dst = append(dst, mpTraceID...)
		dst = appendUUID(append(dst, 0xd9, 36), UUID(t.ID))
	}
	dst = append(dst, mpRootTLID...)
	dst = appendUint(dst, uint64(t.RootTLID))
	dst = appendTLIDsMsgpack(append(dst, mpTLIDs...), t.TLIDs)
	if !t.Timestamp.IsZero() {
		dst = append(dst, mpTimestamp...)
		dst = appendTime(dst, t.Timestamp)
	}
	dst = appendInputMsgpack(append(dst, mpInput...), t.Input)
	dst = appendResultsMsgpack(append(dst, mpFunctionResults...), t.FunctionResults)
	return dst
}

// AppendLayerMsgpack appends a layer as DecodeLayer reads it.
func AppendLayerMsgpack(dst []byte, tlids []TLID, results []FunctionResult) []byte {
	dst = slices.Grow(dst, 64+tlidsSize(tlids)+resultsSize(results))
	dst = appendMapHeader(dst, 2)
	dst = appendTLIDsMsgpack(append(dst, mpTLIDs...), tlids)
	return appendResultsMsgpack(append(dst, mpFunctionResults...), results)
}

// AppendUnmatchedMsgpack appends u as DecodeUnmatched reads it.
func AppendUnmatchedMsgpack(dst []byte, u Unmatched) []byte {
	dst = appendMapHeader(dst, 4)
	dst = appendString(append(dst, mpModule...), u.Module)
	dst = appendString(append(dst, mpPath...), u.Path)
	dst = appendString(append(dst, mpModifier...), u.Modifier)
	return appendInputMsgpack(append(dst, mpInput...), u.Input)
}

func appendUUID(dst []byte, u UUID) []byte {
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hexDigits[c>>4], hexDigits[c&0xf])
	}
	return dst
}

// Upper bounds of the msgpack encodings below, so encoders allocate once.
// A header takes at most 5 bytes, an integer 9.

func tlidsSize(ids []TLID) int { return 5 + 9*len(ids) }

func inputSize(in []InputVar) int {
	n := 5
	for _, v := range in {
		n += 1 + 5 + len(v.Name) + max(len(v.Value), 1)
	}
	return n
}

func resultsSize(rs []FunctionResult) int {
	keys := len(mpTLID) + len(mpExprID) + len(mpFnName) + len(mpHashVersion) + len(mpArgHash) + len(mpValue)
	n := 5
	for i := range rs {
		fr := &rs[i]
		n += 1 + keys + 3*9 + 5 + len(fr.FnName) + 5 + len(fr.ArgHash) + max(len(fr.Value), 1)
	}
	return n
}

func appendTLIDsMsgpack(dst []byte, ids []TLID) []byte {
	dst = appendArrayHeader(dst, len(ids))
	for _, id := range ids {
		dst = appendUint(dst, uint64(id))
	}
	return dst
}

func appendValueMsgpack(dst []byte, v Value) []byte {
	if len(v) == 0 {
		return append(dst, 0xc0)
	}
	return append(dst, v...)
}

func appendInputMsgpack(dst []byte, in []InputVar) []byte {
	dst = appendArrayHeader(dst, len(in))
	for _, v := range in {
		dst = append(dst, 0x92)
		dst = appendString(dst, v.Name)
		dst = appendValueMsgpack(dst, v.Value)
	}
	return dst
}

func appendResultsMsgpack(dst []byte, rs []FunctionResult) []byte {
	dst = appendArrayHeader(dst, len(rs))
	for i := range rs {
		fr := &rs[i]
		dst = append(dst, 0x86)
		dst = appendUint(append(dst, mpTLID...), uint64(fr.TLID))
		dst = appendUint(append(dst, mpExprID...), fr.ExprID)
		dst = appendString(append(dst, mpFnName...), fr.FnName)
		dst = appendInt(append(dst, mpHashVersion...), fr.HashVersion)
		dst = appendString(append(dst, mpArgHash...), fr.ArgHash)
		dst = appendValueMsgpack(append(dst, mpValue...), fr.Value)
	}
	return dst
}

// jsonTime is the API's timestamp form: RFC 3339 UTC with milliseconds.
const jsonTime = "2006-01-02T15:04:05.000Z"

// AppendTraceJSON appends t as the API's JSON document: traceID and
// timestamp omitted when zero, rootTLID, tlids and exprID as decimal
// strings, timestamp as RFC 3339 UTC with milliseconds, values by the
// mapping of value.go. The error is a *FieldError naming the value
// (functionResults[3].value) when one is not well-formed msgpack.
func AppendTraceJSON(dst []byte, t *Trace) ([]byte, error) {
	dst = append(dst, '{')
	if !t.ID.IsZero() {
		dst = append(dst, `"traceID":"`...)
		dst = appendUUID(dst, UUID(t.ID))
		dst = append(dst, `",`...)
	}
	dst = append(dst, `"rootTLID":`...)
	dst = appendQuotedUint(dst, uint64(t.RootTLID))
	dst = append(dst, `,"tlids":`...)
	dst = appendTLIDsJSON(dst, t.TLIDs)
	if !t.Timestamp.IsZero() {
		dst = append(dst, `,"timestamp":"`...)
		dst = t.Timestamp.UTC().AppendFormat(dst, jsonTime)
		dst = append(dst, '"')
	}
	dst = append(dst, `,"input":`...)
	dst, err := appendInputJSON(dst, t.Input)
	if err != nil {
		return dst, err
	}
	dst = append(dst, `,"functionResults":`...)
	if dst, err = appendResultsJSON(dst, t.FunctionResults); err != nil {
		return dst, err
	}
	return append(dst, '}'), nil
}

func appendQuotedUint(dst []byte, u uint64) []byte {
	dst = append(dst, '"')
	dst = strconv.AppendUint(dst, u, 10)
	return append(dst, '"')
}

func appendTLIDsJSON(dst []byte, ids []TLID) []byte {
	dst = append(dst, '[')
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendQuotedUint(dst, uint64(id))
	}
	return append(dst, ']')
}

func appendValueJSON(dst []byte, v Value) ([]byte, error) {
	if len(v) == 0 {
		return append(dst, "null"...), nil
	}
	return AppendJSON(dst, v)
}

func appendInputJSON(dst []byte, in []InputVar) ([]byte, error) {
	dst = append(dst, '[')
	for i, v := range in {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '[')
		dst = appendJSONStr(dst, v.Name)
		dst = append(dst, ',')
		var err error
		if dst, err = appendValueJSON(dst, v.Value); err != nil {
			return dst, withField(err, elem("input", i)+"[1]")
		}
		dst = append(dst, ']')
	}
	return append(dst, ']'), nil
}

func appendResultsJSON(dst []byte, rs []FunctionResult) ([]byte, error) {
	dst = append(dst, '[')
	for i := range rs {
		fr := &rs[i]
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, `{"tlid":`...)
		dst = appendQuotedUint(dst, uint64(fr.TLID))
		dst = append(dst, `,"exprID":`...)
		dst = appendQuotedUint(dst, fr.ExprID)
		dst = append(dst, `,"fnName":`...)
		dst = appendJSONStr(dst, fr.FnName)
		dst = append(dst, `,"hashVersion":`...)
		dst = strconv.AppendInt(dst, fr.HashVersion, 10)
		dst = append(dst, `,"argHash":`...)
		dst = appendJSONStr(dst, fr.ArgHash)
		dst = append(dst, `,"value":`...)
		var err error
		if dst, err = appendValueJSON(dst, fr.Value); err != nil {
			return dst, withField(err, elem("functionResults", i)+".value")
		}
		dst = append(dst, '}')
	}
	return append(dst, ']'), nil
}
