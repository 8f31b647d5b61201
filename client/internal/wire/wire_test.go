package wire

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

func TestUUID(t *testing.T) {
	at := time.Date(2026, 11, 22, 3, 48, 1, 123_000_000, time.UTC)
	id := NewV7(at)
	s := id.String()
	if len(s) != 36 || s[14] != '7' || !strings.ContainsAny(s[19:20], "89ab") {
		t.Fatalf("NewV7 = %s, want a canonical version-7 UUID", s)
	}
	back, err := ParseV7("traceID", s)
	if err != nil || back != id {
		t.Fatalf("ParseV7(%s) = %v, %v; want %v", s, back, err, id)
	}
	if got := back.Time(); !got.Equal(at) {
		t.Errorf("Time = %v, want %v", got, at)
	}
	if NewV7(at) == id {
		t.Errorf("two NewV7 at the same millisecond are equal")
	}
	for _, tc := range []struct{ in, reason string }{
		{"", canonicalForm},
		{strings.ToUpper(s), canonicalForm},
		{"{" + s[1:], canonicalForm},
		{s[:8] + "_" + s[9:], canonicalForm},
		{"7d3f5a1c-0000-4000-8000-00000000000a", "must be a version-7 UUID (RFC 9562)"}, // version 4
		{s[:19] + "c" + s[20:], "must be a version-7 UUID (RFC 9562)"},                  // variant 11
	} {
		_, err := ParseV7("traceID", tc.in)
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != "traceID" || fe.Reason != tc.reason {
			t.Errorf("ParseV7(%q) = %v, want traceID: %s", tc.in, err, tc.reason)
		}
	}
	if u, err := ParseUUID("canvasID", "7d3f5a1c-0000-4000-8000-00000000000a"); err != nil || u.String() != "7d3f5a1c-0000-4000-8000-00000000000a" {
		t.Errorf("ParseUUID of a version-4 UUID = %v, %v", u, err)
	}
}

// TestAppendReadBack writes each value around its format boundaries and
// reads it back, checking the format byte the smallest encoding uses.
func TestAppendReadBack(t *testing.T) {
	uints := []struct {
		v      uint64
		format byte
	}{{0, 0x00}, {127, 0x7f}, {128, 0xcc}, {255, 0xcc}, {256, 0xcd}, {65535, 0xcd}, {65536, 0xce}, {math.MaxUint32, 0xce}, {math.MaxUint32 + 1, 0xcf}, {math.MaxUint64, 0xcf}}
	for _, tc := range uints {
		b := AppendUint(nil, tc.v)
		got, err := NewReader(b, 1).Uint("n")
		if b[0] != tc.format || err != nil || got != tc.v {
			t.Errorf("uint %d: format 0x%02x, read %d, %v; want format 0x%02x", tc.v, b[0], got, err, tc.format)
		}
	}
	ints := []struct {
		v      int64
		format byte
	}{{-1, 0xff}, {-32, 0xe0}, {-33, 0xd0}, {math.MinInt8, 0xd0}, {math.MinInt8 - 1, 0xd1}, {math.MinInt16 - 1, 0xd2}, {math.MinInt32 - 1, 0xd3}, {math.MinInt64, 0xd3}, {5, 0x05}, {math.MaxInt64, 0xcf}}
	for _, tc := range ints {
		b := AppendInt(nil, tc.v)
		got, err := NewReader(b, 1).Int("n")
		if b[0] != tc.format || err != nil || got != tc.v {
			t.Errorf("int %d: format 0x%02x, read %d, %v; want format 0x%02x", tc.v, b[0], got, err, tc.format)
		}
	}
	for _, n := range []int{0, 31, 32, 255, 256, 65535, 65536} {
		s := strings.Repeat("x", n)
		got, err := NewReader(AppendString(nil, s), 1).String("s", 0)
		if err != nil || got != s {
			t.Errorf("string of %d bytes: read %d bytes, %v", n, len(got), err)
		}
	}
	for _, n := range []int{0, 15, 16, 65535, 65536} {
		r := NewReader(append(AppendArrayHeader(nil, n), make([]byte, n)...), 1)
		if got, err := r.ArrayHeader("a"); err != nil || got != n {
			t.Errorf("array of %d: read %d, %v", n, got, err)
		}
		r = NewReader(append(AppendMapHeader(nil, n), make([]byte, 2*n)...), 1)
		if got, err := r.MapHeader("m"); err != nil || got != n {
			t.Errorf("map of %d: read %d, %v", n, got, err)
		}
	}
	for _, ts := range []time.Time{time.Unix(0, 0), time.Unix(math.MaxUint32, 0), time.Unix(1_800_000_000, 123), time.Unix(1<<34-1, 999_999_999), time.Unix(-1, 5), time.Unix(1<<40, 0)} {
		got, err := NewReader(AppendTime(nil, ts), 1).Time("ts")
		if err != nil || !got.Equal(ts) || got.Location() != time.UTC {
			t.Errorf("time %v: read %v, %v", ts, got, err)
		}
	}
}

func TestReaderRefusesMalformedData(t *testing.T) {
	nested := func(depth int) []byte { return append(bytes.Repeat([]byte{0x91}, depth), 0xc0) }
	for _, tc := range []struct {
		name string
		in   []byte
		read func(r *Reader) error
		want string
	}{
		{"truncated string", []byte{0xa5, 'a'}, func(r *Reader) error { _, err := r.StringBytes("s"); return err }, "s: declared length 5 exceeds the 1 bytes that remain"},
		{"huge array", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}, func(r *Reader) error { _, err := r.ArrayHeader("a"); return err }, "a: declared 4294967295 elements exceed the 0 bytes that remain"},
		{"wrong type", []byte{0x91, 0x01}, func(r *Reader) error { _, err := r.MapHeader("m"); return err }, "m: must be a map, not array"},
		{"negative uint", []byte{0xd0, 0x80}, func(r *Reader) error { _, err := r.Uint("n"); return err }, "n: must not be negative"},
		{"unused byte", []byte{0xc1}, func(r *Reader) error { return r.Skip("v") }, "v: invalid msgpack byte 0xc1"},
		{"end of data", nil, func(r *Reader) error { _, err := r.Bool("b"); return err }, "b: truncated msgpack data"},
		{"bad UTF-8", []byte{0xa2, 0xff, 0xfe}, func(r *Reader) error { _, err := r.String("s", 0); return err }, "s: must be valid UTF-8 without NUL bytes"},
		{"too long", []byte{0xa3, 'a', 'b', 'c'}, func(r *Reader) error { _, err := r.String("s", 2); return err }, "s: exceeds the limit of 2"},
		{"not a timestamp", []byte{0xd6, 0x05, 0, 0, 0, 0}, func(r *Reader) error { _, err := r.Time("ts"); return err }, "ts: must be a timestamp, not extension type 5"},
		{"bad timestamp", []byte{0xd5, 0xff, 0, 0}, func(r *Reader) error { return r.Skip("v") }, "v: timestamp extension of 2 bytes (want 4, 8 or 12)"},
		{"too deep", nested(4), func(r *Reader) error { return r.Skip("v") }, "v: nesting deeper than 3"},
	} {
		err := tc.read(NewReader(tc.in, 3))
		var fe *FieldError
		if !errors.As(err, &fe) || err.Error() != tc.want {
			t.Errorf("%s: err = %v, want %s", tc.name, err, tc.want)
		}
	}
	r := NewReader(append(nested(3), 0x07), 3)
	raw, err := r.Raw("v")
	if err != nil || !bytes.Equal(raw, nested(3)) || r.Remaining() != 1 {
		t.Errorf("Raw = %x, %v, %d left; want %x and one byte left", raw, err, r.Remaining(), nested(3))
	}
}
