package traces

import (
	"encoding/hex"
	"strconv"
)

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

// AppendText appends the canonical form (encoding.TextAppender).
func (id TraceID) AppendText(b []byte) ([]byte, error) { return UUID(id).appendText(b), nil }

func (u UUID) appendText(b []byte) []byte {
	var buf [36]byte
	hex.Encode(buf[0:8], u[0:4])
	buf[8] = '-'
	hex.Encode(buf[9:13], u[4:6])
	buf[13] = '-'
	hex.Encode(buf[14:18], u[6:8])
	buf[18] = '-'
	hex.Encode(buf[19:23], u[8:10])
	buf[23] = '-'
	hex.Encode(buf[24:], u[10:])
	return append(b, buf[:]...)
}
