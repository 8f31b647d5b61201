package client

import (
	"strconv"
	"time"

	"github.com/tracegw/tracegw/client/internal/wire"
)

// Decoders of the gateway's msgpack answers (Accept: application/msgpack):
// a trace document and trace lists. They read what the gateway writes and
// check it as strictly as the gateway checks what it receives, so a
// malformed answer is an error naming the field, never a half-filled
// result. Errors are *wire.FieldErrors.

// Limits of a decoded trace, the gateway's defaults for a saved one.
const (
	maxTLIDs           = 10_000
	maxFunctionResults = 100_000
	maxDepth           = 128
)

var invalid = wire.Invalid

// nilTraceID is the text of the nil UUID, what a document without a
// traceID decodes to.
var nilTraceID = TraceID(wire.UUID{}.String())

// fields reads a document map, calling read with the index of each key in
// names (-1 for a key not listed, whose value read must skip). A listed key
// may appear once.
func fields(r *wire.Reader, field string, names []string, read func(i int, key []byte) error) error {
	n, err := r.MapHeader(field)
	if err != nil {
		return err
	}
	var seen uint64
	for range n {
		if t := r.Peek(); t != wire.TypeString && t != wire.TypeInvalid {
			return invalid(field, "keys must be strings, not %s", t)
		}
		k, err := r.StringBytes(field)
		if err != nil {
			return err
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
				return invalid(joinField(field, names[i]), "duplicate key")
			}
			seen |= 1 << i
		}
		if err := read(i, k); err != nil {
			return err
		}
	}
	return nil
}

// joinField names key name of the map named parent; "body" is the document
// itself.
func joinField(parent, name string) string {
	if parent == "body" {
		return name
	}
	return parent + "." + name
}

// keyField names the value of an unknown key, quoting an empty one so the
// field is never blank.
func keyField(parent string, key []byte) string {
	if len(key) == 0 {
		return joinField(parent, `""`)
	}
	return joinField(parent, string(key))
}

func elem(field string, i int) string { return field + "[" + strconv.Itoa(i) + "]" }

// withPrefix puts prefix before the field a *wire.FieldError names:
// element readers name fields relative to the element.
func withPrefix(err error, prefix string) error {
	if fe, ok := err.(*wire.FieldError); ok {
		fe.Field = prefix + fe.Field
	}
	return err
}

func withField(err error, field string) error {
	if fe, ok := err.(*wire.FieldError); ok {
		fe.Field = field
	}
	return err
}

// readUint64 reads an unsigned 64-bit integer given as a msgpack integer or
// as its decimal string (the form JSON uses, and map keys).
func readUint64(r *wire.Reader, field string) (uint64, error) {
	switch r.Peek() {
	case wire.TypeString:
		b, err := r.StringBytes(field)
		if err != nil {
			return 0, err
		}
		u, ok := parseDecimal(b)
		if !ok {
			return 0, invalid(field, "must be an unsigned 64-bit integer in decimal")
		}
		return u, nil
	case wire.TypeInt:
		return r.Uint(field)
	}
	return 0, r.WrongType(field, "an unsigned 64-bit integer or its decimal string")
}

func readTLID(r *wire.Reader, field string) (TLID, error) {
	u, err := readUint64(r, field)
	return TLID(u), err
}

// parseDecimal parses decimal digits without sign or leading zeros, up to
// 2^64-1.
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

// readTLIDs reads an array of at most maxTLIDs toplevel IDs and returns
// them without duplicates, in first-seen order.
func readTLIDs(r *wire.Reader, field string) ([]TLID, error) {
	n, err := r.ArrayHeader(field)
	if err != nil {
		return nil, err
	}
	if n > maxTLIDs {
		return nil, wire.TooLarge(field, maxTLIDs)
	}
	if n == 0 {
		return nil, nil
	}
	ids := make([]TLID, 0, n)
	for i := range n {
		id, err := readTLID(r, field)
		if err != nil {
			return nil, withField(err, elem(field, i))
		}
		ids = append(ids, id)
	}
	return dedupeTLIDs(ids), nil
}

// dedupeTLIDs removes repeated IDs in place, keeping first-seen order.
func dedupeTLIDs(ids []TLID) []TLID {
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

// readTimestamp reads a time given as a msgpack timestamp or an RFC 3339
// string, in UTC.
func readTimestamp(r *wire.Reader, field string) (time.Time, error) {
	switch r.Peek() {
	case wire.TypeExt:
		return r.Time(field)
	case wire.TypeString:
		b, err := r.StringBytes(field)
		if err != nil {
			return time.Time{}, err
		}
		t, err := time.Parse(time.RFC3339Nano, string(b))
		if err != nil {
			return time.Time{}, invalid(field, "must be an RFC 3339 time")
		}
		return t.UTC(), nil
	}
	return time.Time{}, r.WrongType(field, "a timestamp or an RFC 3339 string")
}

var traceFields = []string{"traceID", "rootTLID", "tlids", "timestamp", "input", "functionResults"}

// decodeTrace decodes the msgpack trace document of Get. An absent traceID
// leaves the nil UUID's text; RootTLID is required and added to TLIDs when
// missing; TLIDs are deduplicated in first-seen order; unknown keys are
// skipped. Slices are never nil, and values alias body.
func decodeTrace(body []byte) (*Trace, error) {
	if len(body) == 0 {
		return nil, invalid("body", "empty")
	}
	r := wire.NewReader(body, maxDepth)
	var id wire.UUID
	t := &Trace{}
	haveRoot := false
	err := fields(r, "body", traceFields, func(i int, key []byte) error {
		var err error
		switch i {
		case 0:
			if r.Nil() {
				return nil
			}
			var s []byte
			if s, err = r.StringBytes("traceID"); err == nil {
				id, err = wire.ParseV7("traceID", string(s))
			}
		case 1:
			t.RootTLID, err = readTLID(r, "rootTLID")
			haveRoot = true
		case 2:
			t.TLIDs, err = readTLIDs(r, "tlids")
		case 3:
			if r.Nil() {
				return nil
			}
			if t.Timestamp, err = readTimestamp(r, "timestamp"); err == nil && (t.Timestamp.Unix() < 0 || t.Timestamp.Year() > 9999) {
				err = invalid("timestamp", "must be between 1970 and 9999")
			}
		case 4:
			t.Input, err = readInput(r, "input")
		case 5:
			t.FunctionResults, err = readResults(r, "functionResults")
		default:
			err = r.Skip(keyField("body", key))
		}
		return err
	})
	if err == nil && r.Remaining() != 0 {
		err = invalid("body", "trailing data after the document")
	}
	if err != nil {
		return nil, err
	}
	if !haveRoot {
		return nil, invalid("rootTLID", "required")
	}
	t.ID = TraceID(id.String()) // nilTraceID when absent
	t.TLIDs = addTLID(t.TLIDs, t.RootTLID)
	if t.Input == nil {
		t.Input = []InputVar{}
	}
	if t.FunctionResults == nil {
		t.FunctionResults = []FunctionResult{}
	}
	return t, nil
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

// readInput reads the ordered [name, value] pairs of an input.
func readInput(r *wire.Reader, field string) ([]InputVar, error) {
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
		if err := readInputVar(r, &v); err != nil {
			return nil, withPrefix(err, elem(field, i))
		}
		vars = append(vars, v)
	}
	return vars, nil
}

func readInputVar(r *wire.Reader, v *InputVar) error {
	n, err := r.ArrayHeader("")
	if err != nil {
		return err
	}
	if n != 2 {
		return invalid("", "must be a [name, value] pair, not %d elements", n)
	}
	if v.Name, err = r.String("[0]", 0); err != nil {
		return err
	}
	v.Value, err = r.Raw("[1]")
	return err
}

var resultFields = []string{"tlid", "exprID", "fnName", "hashVersion", "argHash", "value"}

// readResults reads at most maxFunctionResults function results.
func readResults(r *wire.Reader, field string) ([]FunctionResult, error) {
	if r.Nil() {
		return nil, nil
	}
	n, err := r.ArrayHeader(field)
	if err != nil || n == 0 {
		return nil, err
	}
	if n > maxFunctionResults {
		return nil, wire.TooLarge(field, maxFunctionResults)
	}
	res := make([]FunctionResult, 0, min(n, r.Remaining()/16+1))
	for i := range n {
		var fr FunctionResult
		if err := readResult(r, &fr); err != nil {
			return nil, withPrefix(err, elem(field, i))
		}
		res = append(res, fr)
	}
	return res, nil
}

func readResult(r *wire.Reader, fr *FunctionResult) error {
	var have uint8
	err := fields(r, "", resultFields, func(i int, key []byte) error {
		var err error
		switch i {
		case 0:
			fr.TLID, err = readTLID(r, ".tlid")
		case 1:
			fr.ExprID, err = readUint64(r, ".exprID")
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
			return invalid("."+resultFields[i], "required")
		}
	}
	return nil
}
