package traces

import (
	"maps"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// The document codec. Every body is decoded from msgpack: a JSON body is
// first converted by JSONToMsgpack, so the field rules below are written
// once. Values read from a msgpack body alias it (they are its exact bytes);
// callers must not modify a body after decoding it.
//
// Text is UTF-8. In a request body (DecodeTrace, DecodeLayer,
// DecodeUnmatched, DecodeFields) every string must be valid UTF-8: in JSON,
// every string (the conversion also refuses lone surrogate escapes); in
// msgpack, every str — the document's keys, names (input names, fnName,
// argHash, routes) and each str at any depth of a value, map keys
// included. bin and extension payloads are bytes and are not checked. The
// error names the field holding the string ("input[0][1]",
// "functionResults[3].value"). Objects read back from storage
// (DecodeStored*) are not checked, so objects written before the check
// stay readable.

// docFrames is how deep the documents nest around a value (document map,
// list, element), the allowance JSON conversion adds to Limits.MaxDepth
// before each value's own depth is checked exactly by the msgpack reader.
const docFrames = 3

// Unmatched is a request that hit no handler (a "404"): the route it
// asked for and the input it carried.
type Unmatched struct {
	Module, Path, Modifier string
	Input                  []InputVar
}

// Length limits of an unmatched request's route.
const (
	MaxModuleLen   = 1024
	MaxPathLen     = 1024
	MaxModifierLen = 64
)

// withPrefix puts prefix before the field a *FieldError names. Element
// readers name their fields relative to the element (".value", "[1]") and
// the caller adds the element's path, so paths are only built on error.
func withPrefix(err error, prefix string) error {
	if fe, ok := err.(*FieldError); ok {
		fe.Field = prefix + fe.Field
	}
	return err
}

func elem(field string, i int) string { return field + "[" + itoa(i) + "]" }

// newBodyReader checks the body size and returns a Reader over the body's
// msgpack form.
func newBodyReader(body []byte, isJSON bool, lim Limits) (*Reader, error) {
	lim = lim.OrDefault()
	if int64(len(body)) > lim.MaxBody {
		return nil, TooLarge("body", lim.MaxBody)
	}
	if isJSON {
		mp, err := jsonToMsgpack(make([]byte, 0, len(body)), body, lim.MaxDepth+docFrames, lim.MaxDepth, docFrames)
		if err != nil {
			return nil, err
		}
		body = mp
	}
	if len(body) == 0 {
		return nil, Invalid("body", "empty")
	}
	// JSON strings were checked by the conversion; stored objects are not
	// checked (see Limits.stored).
	return &Reader{b: body, maxDepth: lim.MaxDepth, checkUTF8: !isJSON && !lim.stored}, nil
}

// end checks that the document took the whole body.
func (r *Reader) end() error {
	if r.off != len(r.b) {
		return Invalid("body", "trailing data after the document")
	}
	return nil
}

// fields reads a document map, calling read with the index of each key in
// names (-1 for a key not listed, whose value read must skip). A listed key
// may appear once.
func (r *Reader) fields(field string, names []string, read func(i int, key []byte) error) error {
	n, err := r.MapHeader(field)
	if err != nil {
		return err
	}
	var seen uint64
	for range n {
		if t := r.Peek(); t != TypeString && t != TypeInvalid {
			return Invalid(field, "keys must be strings, not %s", t)
		}
		k, err := r.StringBytes(field)
		if err != nil {
			return err
		}
		if r.checkUTF8 && !utf8.Valid(k) {
			return errNotUTF8(field, r.off-len(k))
		}
		i := -1
		for j, name := range names {
			if string(k) == name {
				i = j
				break
			}
		}
		if i >= 0 {
			if seen&(1<<i) != 0 {
				return Invalid(joinField(field, names[i]), "duplicate key")
			}
			seen |= 1 << i
		}
		if err := read(i, k); err != nil {
			return err
		}
	}
	return nil
}

// joinField names key name of the map named parent; "body" is the
// document itself.
func joinField(parent, name string) string {
	if parent == "body" {
		return name
	}
	return parent + "." + name
}

// unknownKey handles a top-level key that the document's fields (known)
// do not include: skipped under lim.SkipUnknown, else an error naming it
// and the fields there are.
func (r *Reader) unknownKey(lim Limits, key []byte, known []string) error {
	f := keyField("body", key)
	if lim.SkipUnknown {
		return r.Skip(f)
	}
	return Invalid(f, "unknown field (the fields are %s)", strings.Join(known, ", "))
}

// keyField names the value of an unknown key, quoting an empty one so the
// field is never blank and cutting a long one to MaxQuoted bytes. It only
// runs for keys the decoder does not know.
func keyField(parent string, key []byte) string {
	if len(key) == 0 {
		return joinField(parent, `""`)
	}
	return joinField(parent, cutBytes(key, MaxQuoted))
}

// TLID reads a toplevel ID: a non-negative msgpack integer or its decimal
// string (the form JSON uses for 64-bit integers).
func (r *Reader) TLID(field string) (TLID, error) {
	u, err := r.uint64Field(field)
	return TLID(u), err
}

// uint64Field reads an unsigned 64-bit integer given as a msgpack integer
// or as a decimal string.
func (r *Reader) uint64Field(field string) (uint64, error) {
	switch r.Peek() {
	case TypeString:
		b, err := r.StringBytes(field)
		if err != nil {
			return 0, err
		}
		u, ok := parseDecimal(b)
		if !ok {
			return 0, Invalid(field, "must be an unsigned 64-bit integer in decimal")
		}
		return u, nil
	case TypeInt:
		return r.Uint(field)
	}
	return 0, r.wrongType(field, "an unsigned 64-bit integer or its decimal string")
}

// parseDecimal parses what ParseTLID accepts: decimal digits without sign
// or leading zeros, up to 2^64-1.
func parseDecimal(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 || (len(b) > 1 && b[0] == '0') {
		return 0, false
	}
	var u uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if u > (1<<64-1-d)/10 {
			return 0, false
		}
		u = u*10 + d
	}
	return u, true
}

// TLIDs reads an array of at most max toplevel IDs (more is TooLarge naming
// field and max) and returns them without duplicates, in first-seen order.
func (r *Reader) TLIDs(field string, max int) ([]TLID, error) {
	n, err := r.ArrayHeader(field)
	if err != nil {
		return nil, err
	}
	if n > max {
		return nil, TooLarge(field, int64(max))
	}
	if n == 0 {
		return nil, nil
	}
	ids := make([]TLID, 0, n)
	for i := range n {
		id, err := r.TLID(field)
		if err != nil {
			return nil, withField(err, elem(field, i))
		}
		ids = append(ids, id)
	}
	return dedupeTLIDs(ids), nil
}

func withField(err error, field string) error {
	if fe, ok := err.(*FieldError); ok {
		fe.Field = field
	}
	return err
}

// dedupeTLIDs removes repeated IDs in place, keeping first-seen order.
func dedupeTLIDs(ids []TLID) []TLID {
	if len(ids) <= 32 {
		out := ids[:0]
	next:
		for _, id := range ids {
			for _, o := range out {
				if o == id {
					continue next
				}
			}
			out = append(out, id)
		}
		return out
	}
	seen := make(map[TLID]struct{}, len(ids))
	out := ids[:0]
	for _, id := range ids {
		if _, dup := seen[id]; !dup {
			seen[id] = struct{}{}
			out = append(out, id)
		}
	}
	return out
}

// Timestamp reads a time given as a msgpack timestamp or an RFC 3339
// string, in UTC.
func (r *Reader) Timestamp(field string) (time.Time, error) {
	switch r.Peek() {
	case TypeExt:
		return r.Time(field)
	case TypeString:
		b, err := r.StringBytes(field)
		if err != nil {
			return time.Time{}, err
		}
		t, err := time.Parse(time.RFC3339Nano, string(b))
		if err != nil {
			return time.Time{}, Invalid(field, "must be an RFC 3339 time")
		}
		return t.UTC(), nil
	}
	return time.Time{}, r.wrongType(field, "a timestamp or an RFC 3339 string")
}

var traceFields = []string{"traceID", "rootTLID", "tlids", "timestamp", "input", "functionResults"}

// DecodeTrace decodes a trace document (api/openapi.yaml's Trace) from
// msgpack, or from JSON when isJSON. The trace ID and timestamp may be absent (zero: the caller
// fills them); a present traceID must be a version-7 UUID and a present
// timestamp lie in the years 1970 to 9999 (nanoseconds are kept). RootTLID is
// required and added to TLIDs when missing; TLIDs are deduplicated in
// first-seen order. lim.MaxTLIDs bounds tlids and also the toplevels the
// trace touches besides its root (tlids and the results' tlids together). A
// top-level key that is none of these is an error naming it unless
// lim.SkipUnknown (keys inside a function result are skipped either way).
// Values alias body when it is
// msgpack. Errors are *FieldErrors wrapping ErrInvalid, naming the field
// (rootTLID, functionResults[3].value, …); over a limit of lim (zero fields:
// defaults) the error is TooLarge naming the field and the limit.
func DecodeTrace(body []byte, isJSON bool, lim Limits) (*Trace, error) {
	lim = lim.OrDefault()
	r, err := newBodyReader(body, isJSON, lim)
	if err != nil {
		return nil, err
	}
	t := &Trace{}
	haveRoot := false
	err = r.fields("body", traceFields, func(i int, key []byte) error {
		var err error
		switch i {
		case 0:
			if r.Nil() {
				return nil
			}
			var s []byte
			if s, err = r.StringBytes("traceID"); err == nil {
				t.ID, err = ParseTraceID(string(s))
			}
		case 1:
			t.RootTLID, err = r.TLID("rootTLID")
			haveRoot = true
		case 2:
			t.TLIDs, err = r.TLIDs("tlids", lim.MaxTLIDs)
		case 3:
			if r.Nil() {
				return nil
			}
			if t.Timestamp, err = r.Timestamp("timestamp"); err == nil && !timestampInRange(t.Timestamp) {
				err = Invalid("timestamp", "must be between 1970 and 9999")
			}
		case 4:
			t.Input, err = r.inputVars("input")
		case 5:
			t.FunctionResults, err = r.functionResults("functionResults", lim)
		default:
			err = r.unknownKey(lim, key, traceFields)
		}
		return err
	})
	if err == nil {
		err = r.end()
	}
	if err != nil {
		return nil, err
	}
	if !haveRoot {
		return nil, Invalid("rootTLID", "required")
	}
	if !lim.stored { // objects stored before the check stay readable
		if err := checkTouched(t.TLIDs, t.FunctionResults, lim.MaxTLIDs); err != nil {
			return nil, err
		}
	}
	t.TLIDs = addTLID(t.TLIDs, t.RootTLID)
	return t, nil
}

// checkTouched bounds the toplevels a trace touches besides its root: its
// tlids and its function results' tlids together, as for a layer. The index
// writes a row (and updates a toplevel) for each, so 100,000 results of
// distinct toplevels must not get past a limit of 10,000 tlids.
func checkTouched(tlids []TLID, results []FunctionResult, max int) error {
	if len(tlids)+len(results) <= max {
		return nil
	}
	if _, err := LayerTLIDs(tlids, results, max); err != nil {
		return &FieldError{Field: "tlids", Limit: int64(max),
			Reason: "the toplevels the trace touches (tlids and the functionResults' tlids) exceed the limit of " + itoa(max)}
	}
	return nil
}

// timestampInRange keeps trace times where a UUIDv7 and RFC 3339 can
// carry them.
func timestampInRange(t time.Time) bool {
	return t.Unix() >= 0 && t.Year() <= 9999
}

// addTLID appends id unless ids holds it.
func addTLID(ids []TLID, id TLID) []TLID {
	for _, o := range ids {
		if o == id {
			return ids
		}
	}
	return append(ids, id)
}

// inputVars reads the ordered [name, value] pairs of an input.
func (r *Reader) inputVars(field string) ([]InputVar, error) {
	if r.Nil() {
		return nil, nil
	}
	n, err := r.ArrayHeader(field)
	if err != nil || n == 0 {
		return nil, err
	}
	vars := make([]InputVar, 0, min(n, r.Remaining()/3+1))
	for i := range n {
		var v InputVar
		if err := r.inputVar(&v); err != nil {
			return nil, withPrefix(err, elem(field, i))
		}
		vars = append(vars, v)
	}
	return vars, nil
}

func (r *Reader) inputVar(v *InputVar) error {
	n, err := r.ArrayHeader("")
	if err != nil {
		return err
	}
	if n != 2 {
		return Invalid("", "must be a [name, value] pair, not %d elements", n)
	}
	if v.Name, err = r.String("[0]", 0); err != nil {
		return err
	}
	v.Value, err = r.Raw("[1]")
	return err
}

var resultFields = []string{"tlid", "exprID", "fnName", "hashVersion", "argHash", "value"}

// functionResults reads at most lim.MaxFunctionResults results.
func (r *Reader) functionResults(field string, lim Limits) ([]FunctionResult, error) {
	if r.Nil() {
		return nil, nil
	}
	n, err := r.ArrayHeader(field)
	if err != nil || n == 0 {
		return nil, err
	}
	if n > lim.MaxFunctionResults {
		return nil, TooLarge(field, int64(lim.MaxFunctionResults))
	}
	// A result takes well over 16 bytes, so this never reserves more than
	// the body could fill.
	res := make([]FunctionResult, 0, min(n, r.Remaining()/16+1))
	for i := range n {
		var fr FunctionResult
		if err := r.functionResult(&fr); err != nil {
			return nil, withPrefix(err, elem(field, i))
		}
		res = append(res, fr)
	}
	return res, nil
}

func (r *Reader) functionResult(fr *FunctionResult) error {
	var have uint8
	err := r.fields("", resultFields, func(i int, key []byte) error {
		var err error
		switch i {
		case 0:
			fr.TLID, err = r.TLID(".tlid")
		case 1:
			fr.ExprID, err = r.uint64Field(".exprID")
		case 2:
			fr.FnName, err = r.String(".fnName", 0)
		case 3:
			if !r.Nil() {
				fr.HashVersion, err = r.Int(".hashVersion")
			}
		case 4:
			if !r.Nil() {
				fr.ArgHash, err = r.String(".argHash", 0)
			}
		case 5:
			fr.Value, err = r.Raw(".value")
		default:
			err = r.Skip(keyField("", key))
		}
		if i >= 0 {
			have |= 1 << i
		}
		return err
	})
	if err != nil {
		return err
	}
	for _, i := range []int{0, 1, 2, 5} {
		if have&(1<<i) == 0 {
			return Invalid("."+resultFields[i], "required")
		}
	}
	return nil
}

var layerFields = []string{"tlids", "functionResults"}

// DecodeLayer decodes a layer of function results, the body of "add
// function results": {"tlids":[…],"functionResults":[…]}, from msgpack or
// (isJSON) JSON. functionResults is required and non-empty; the TLIDs of
// the results are added to tlids, which come back deduplicated in
// first-seen order. Values alias body when it is msgpack. Errors, and
// other top-level keys, are as for DecodeTrace (the union of tlids over
// MaxTLIDs is TooLarge("tlids")).
func DecodeLayer(body []byte, isJSON bool, lim Limits) (tlids []TLID, results []FunctionResult, err error) {
	lim = lim.OrDefault()
	r, err := newBodyReader(body, isJSON, lim)
	if err != nil {
		return nil, nil, err
	}
	err = r.fields("body", layerFields, func(i int, key []byte) error {
		var err error
		switch i {
		case 0:
			tlids, err = r.TLIDs("tlids", lim.MaxTLIDs)
		case 1:
			results, err = r.functionResults("functionResults", lim)
		default:
			err = r.unknownKey(lim, key, layerFields)
		}
		return err
	})
	if err == nil {
		err = r.end()
	}
	if err != nil {
		return nil, nil, err
	}
	if len(results) == 0 {
		return nil, nil, Invalid("functionResults", "required")
	}
	if tlids, err = LayerTLIDs(tlids, results, lim.MaxTLIDs); err != nil {
		return nil, nil, err
	}
	return tlids, results, nil
}

// LayerTLIDs adds the results' TLIDs to ids, keeping first-seen order: the
// tlids a layer touches. More than max wraps a *FieldError (TooLarge).
func LayerTLIDs(ids []TLID, results []FunctionResult, max int) ([]TLID, error) {
	all := make([]TLID, 0, len(ids)+len(results))
	all = append(all, ids...)
	for _, fr := range results {
		all = append(all, fr.TLID)
	}
	all = dedupeTLIDs(all)
	if len(all) > max {
		return nil, TooLarge("tlids", int64(max))
	}
	return all, nil
}

var unmatchedFields = []string{"module", "path", "modifier", "input"}

// DecodeUnmatched decodes an unmatched request, {"module","path",
// "modifier","input"}, from msgpack or (isJSON) JSON. module and path are
// required, each at most 1024 bytes; modifier at most 64; all valid UTF-8
// without NUL. Another top-level key is an error naming it unless
// lim.SkipUnknown. Values alias body when it is msgpack. Errors are
// *FieldErrors wrapping ErrInvalid; a length over its limit is TooLarge.
func DecodeUnmatched(body []byte, isJSON bool, lim Limits) (Unmatched, error) {
	var u Unmatched
	r, err := newBodyReader(body, isJSON, lim)
	if err != nil {
		return u, err
	}
	var have [2]bool
	err = r.fields("body", unmatchedFields, func(i int, key []byte) error {
		var err error
		switch i {
		case 0:
			u.Module, err = r.String("module", MaxModuleLen)
			have[0] = true
		case 1:
			u.Path, err = r.String("path", MaxPathLen)
			have[1] = true
		case 2:
			if !r.Nil() {
				u.Modifier, err = r.String("modifier", MaxModifierLen)
			}
		case 3:
			u.Input, err = r.inputVars("input")
		default:
			err = r.unknownKey(lim, key, unmatchedFields)
		}
		return err
	})
	if err == nil {
		err = r.end()
	}
	switch {
	case err != nil:
		return Unmatched{}, err
	case !have[0] || u.Module == "":
		return Unmatched{}, Invalid("module", "required")
	case !have[1] || u.Path == "":
		return Unmatched{}, Invalid("path", "required")
	}
	return u, nil
}

// DecodeFields decodes a small request body that is one map, such as
// {"tlids":[…],"limit":10} or {"reason":"…"}, from msgpack or (isJSON)
// JSON. For each key in fields, its function reads the value with r (and
// must read exactly that value); another key is an error naming it unless
// lim.SkipUnknown, which skips it; a key may appear once. An empty body (or only whitespace, for JSON) is an empty map, so
// optional bodies need no special case; required keys are the caller's to
// check. Errors are *FieldErrors wrapping ErrInvalid, or what a function
// returned.
func DecodeFields(body []byte, isJSON bool, lim Limits, fields map[string]func(r *Reader, field string) error) error {
	if isEmptyBody(body, isJSON) {
		return nil
	}
	r, err := newBodyReader(body, isJSON, lim)
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(fields))
	n, err := r.MapHeader("body")
	if err != nil {
		return err
	}
	for range n {
		k, err := r.String("body", 0)
		if err != nil {
			return err
		}
		fn := fields[k]
		if fn == nil {
			if !lim.SkipUnknown {
				return r.unknownKey(lim, []byte(k), slices.Sorted(maps.Keys(fields)))
			}
			if err := r.Skip(keyField("body", []byte(k))); err != nil {
				return err
			}
			continue
		}
		if seen[k] {
			return Invalid(k, "duplicate key")
		}
		seen[k] = true
		// Find where the value ends first, so a function that reads too
		// little or too much is caught here rather than as a confusing
		// error at the next key.
		start := r.off
		if err := r.Skip(keyField("body", []byte(k))); err != nil {
			return err
		}
		end := r.off
		r.off = start
		if err := fn(r, k); err != nil {
			return err
		}
		if r.off != end {
			return Invalid(k, "has an unexpected form")
		}
	}
	return r.end()
}

func isEmptyBody(body []byte, isJSON bool) bool {
	if !isJSON {
		return len(body) == 0
	}
	for _, c := range body {
		switch c {
		case ' ', '\t', '\n', '\r':
		default:
			return false
		}
	}
	return true
}
