package traces

import "strconv"

// MarshalText renders the canonical form, so JSON and msgpack carry IDs as strings.
func (id TraceID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText parses the canonical form of a version-7 UUID.
func (id *TraceID) UnmarshalText(b []byte) error {
	v, err := ParseTraceID(string(b))
	*id = v
	return err
}

// MarshalText renders the canonical form.
func (c CanvasID) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// MarshalJSON emits the decimal string form (the proto3 JSON mapping of
// 64-bit integers); msgpack, which ignores this method, carries a native uint.
func (t TLID) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 22)
	b = append(b, '"')
	b = strconv.AppendUint(b, uint64(t), 10)
	return append(b, '"'), nil
}
