package traces

// The JSON <-> msgpack mapping of values. docs/api.md states it for
// integrators ("Values: JSON and msgpack"); change the two together.
//
// A Value is held as msgpack; JSON is converted on the way in and out.
//
// JSON to msgpack (JSONToMsgpack):
//   - null -> nil; true, false -> bool; string -> str; array -> array.
//   - object -> map with string keys in the order they appear. A key that
//     appears twice in one object is an error naming it.
//   - A number written without fraction or exponent is an integer: one that
//     is not negative becomes the smallest msgpack uint (positive fixint,
//     uint 8/16/32/64), a negative one the smallest signed int (negative
//     fixint, int 8/16/32/64). Integers beyond int64 and uint64 range, and
//     every number with a fraction or exponent, become float64 (1.0 and -0
//     are floats; a number too large for float64 is an error).
//   - Strings are unescaped. A string holding invalid UTF-8 or a lone
//     surrogate escape ("\ud800") is an error naming it, where
//     encoding/json would put U+FFFD in its place: what is stored is what
//     the caller sent, or nothing.
//
// msgpack to JSON (AppendJSON):
//   - nil -> null; bool -> true/false; every integer format -> a JSON number
//     (the exact decimal, also for uint64 beyond 2^53).
//   - float32, float64 -> the shortest number that reads back to the same
//     float (formatted as encoding/json does); NaN and ±Inf -> null.
//   - str -> string (invalid UTF-8 becomes \ufffd, as in encoding/json;
//     U+2028 and U+2029 are escaped; HTML characters are not).
//   - bin -> a base64 (standard, padded) string.
//   - timestamp extension (-1) -> an RFC 3339 string in UTC with as many
//     fractional digits as needed ("2026-11-22T03:48:01.123Z").
//   - other extensions -> {"$ext":{"type":N,"data":"<base64>"}}.
//   - map -> object in the msgpack order. A str key is used as is; any
//     other key is rendered as JSON and that text is the key (1 -> "1",
//     [1,2] -> "[1,2]"); a key whose JSON is already a string (bin,
//     timestamp) is that string.
//
// So JSON -> msgpack -> JSON reproduces any JSON text modulo whitespace,
// escapes, duplicate-free keys and number spelling (1.0 -> 1, 1e2 -> 100),
// while bin, extensions, timestamps, float32 and non-string keys have no
// JSON form that converts back to them: only msgpack keeps those exact.

// maxJSONDepth bounds AppendJSON's recursion. Stored values are bounded by
// Limits.MaxDepth (128 by default) long before this.
const maxJSONDepth = 10_000

// MarshalJSON renders v by the mapping above (an empty Value is null). The
// error is a *FieldError (field "value") when v is not one well-formed
// msgpack value.
func (v Value) MarshalJSON() ([]byte, error) {
	if len(v) == 0 {
		return []byte("null"), nil
	}
	return AppendJSON(nil, v)
}

// UnmarshalJSON converts one JSON value by the mapping above with the
// default limits. The error is a *FieldError wrapping ErrInvalid.
func (v *Value) UnmarshalJSON(data []byte) error {
	b, err := JSONToMsgpack(nil, data, DefaultLimits)
	if err != nil {
		return err
	}
	*v = b
	return nil
}

// MarshalMsgpack returns the raw msgpack bytes, so msgpack encoders (such
// as github.com/vmihailenco/msgpack/v5) embed the value unchanged. An empty
// Value is nil.
func (v Value) MarshalMsgpack() ([]byte, error) {
	if len(v) == 0 {
		return []byte{0xc0}, nil
	}
	return v, nil
}

// UnmarshalMsgpack keeps a copy of one msgpack value after checking it is
// well formed and no deeper than the default limit. The error is a
// *FieldError wrapping ErrInvalid.
func (v *Value) UnmarshalMsgpack(b []byte) error {
	r := Reader{b: b, maxDepth: DefaultLimits.MaxDepth}
	if err := r.Skip("value"); err != nil {
		return err
	}
	if r.off != len(b) {
		return Invalid("value", "trailing bytes after the msgpack value")
	}
	*v = append(Value(nil), b...)
	return nil
}
