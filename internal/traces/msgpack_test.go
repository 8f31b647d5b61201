package traces

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// The test encoder: enc writes Go test values as msgpack, so tables read as
// documents rather than bytes.

type (
	obj []any // map entries: key, value, key, value…
	ext struct {
		typ  int8
		data []byte
	}
	raw []byte // written as is
	f32 float32
	i64 int64 // a signed value in the signed formats (negative) or uint family
	bin []byte
)

func enc(vs ...any) []byte {
	var b []byte
	for _, v := range vs {
		b = encOne(b, v)
	}
	return b
}

func encOne(b []byte, v any) []byte {
	switch v := v.(type) {
	case nil:
		return append(b, 0xc0)
	case bool:
		if v {
			return append(b, 0xc3)
		}
		return append(b, 0xc2)
	case int:
		return appendInt(b, int64(v))
	case i64:
		return appendInt(b, int64(v))
	case uint64:
		return appendUint(b, v)
	case TLID:
		return appendUint(b, uint64(v))
	case string:
		return appendString(b, v)
	case bin:
		b = append(b, 0xc4, byte(len(v)))
		return append(b, v...)
	case f32:
		return binary.BigEndian.AppendUint32(append(b, 0xca), math.Float32bits(float32(v)))
	case float64:
		return appendFloat64(b, v)
	case time.Time:
		return appendTime(b, v)
	case ext:
		b = append(b, 0xc7, byte(len(v.data)), byte(v.typ))
		return append(b, v.data...)
	case raw:
		return append(b, v...)
	case []any:
		b = appendArrayHeader(b, len(v))
		for _, e := range v {
			b = encOne(b, e)
		}
		return b
	case obj:
		b = appendMapHeader(b, len(v)/2)
		for _, e := range v {
			b = encOne(b, e)
		}
		return b
	}
	panic("enc: unsupported type")
}

func fieldOf(t *testing.T, err error) *FieldError {
	t.Helper()
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("got error %v (%T), want a *FieldError", err, err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("got error %v, want it to wrap ErrInvalid", err)
	}
	return fe
}

func TestReaderScalars(t *testing.T) {
	ts := time.Date(2026, 11, 22, 3, 48, 1, 123456789, time.UTC)
	b := enc(nil, true, false, -5, i64(-200), i64(math.MinInt64), uint64(math.MaxUint64), 300,
		"héllo", bin{1, 2}, f32(1.5), 2.25, ts, ext{typ: 7, data: []byte{9}})
	r := NewReader(b, Limits{})
	if !r.Nil() {
		t.Fatal("got no nil, want nil")
	}
	for _, want := range []bool{true, false} {
		if got, err := r.Bool("b"); err != nil || got != want {
			t.Fatalf("Bool: got %v, %v, want %v", got, err, want)
		}
	}
	for _, want := range []int64{-5, -200, math.MinInt64} {
		if got, err := r.Int("i"); err != nil || got != want {
			t.Fatalf("Int: got %v, %v, want %v", got, err, want)
		}
	}
	for _, want := range []uint64{math.MaxUint64, 300} {
		if got, err := r.Uint("u"); err != nil || got != want {
			t.Fatalf("Uint: got %v, %v, want %v", got, err, want)
		}
	}
	if got, err := r.String("s", 0); err != nil || got != "héllo" {
		t.Fatalf("String: got %q, %v", got, err)
	}
	if got, err := r.Bin("bin"); err != nil || !bytes.Equal(got, []byte{1, 2}) {
		t.Fatalf("Bin: got %v, %v", got, err)
	}
	for _, want := range []float64{1.5, 2.25} {
		if got, err := r.Float("f"); err != nil || got != want {
			t.Fatalf("Float: got %v, %v, want %v", got, err, want)
		}
	}
	if got, err := r.Time("t"); err != nil || !got.Equal(ts) {
		t.Fatalf("Time: got %v, %v, want %v", got, err, ts)
	}
	if typ, data, err := r.Ext("e"); err != nil || typ != 7 || !bytes.Equal(data, []byte{9}) {
		t.Fatalf("Ext: got %d %v %v", typ, data, err)
	}
	if r.Remaining() != 0 {
		t.Fatalf("got %d bytes left, want 0", r.Remaining())
	}
}

func TestReaderTimestampSizes(t *testing.T) {
	for _, ts := range []time.Time{
		time.Unix(1_700_000_000, 0).UTC(),                // 32-bit
		time.Unix(1_700_000_000, 5).UTC(),                // 64-bit
		time.Unix(1<<34+1, 999_999_999).UTC(),            // 96-bit
		time.Unix(-1, 0).UTC(),                           // 96-bit: before 1970
		time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC),         // 96-bit
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), // 64-bit
	} {
		b := appendTime(nil, ts)
		got, err := NewReader(b, Limits{}).Time("t")
		if err != nil || !got.Equal(ts) {
			t.Errorf("Time(%x): got %v, %v, want %v", b, got, err, ts)
		}
	}
}

func TestReaderErrors(t *testing.T) {
	deep := func(n int, open byte) []byte { return append(bytes.Repeat([]byte{open}, n), 0xc0) }
	for _, tc := range []struct {
		name   string
		b      []byte
		read   func(r *Reader) error
		reason string
		limit  int64
	}{
		{"array 2^32", []byte{0xdd, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0}, skip, "declared 4294967295 elements exceed the 5 bytes that remain", 0},
		{"map 2^32", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0}, skip, "declared 4294967295 elements exceed the 5 bytes that remain", 0},
		{"map needs 2 bytes an entry", []byte{0x83, 0, 0, 0, 0, 0}, skip, "declared 3 elements exceed the 5 bytes that remain", 0},
		{"str 2^32", []byte{0xdb, 0xff, 0xff, 0xff, 0xff, 'a'}, skip, "declared length 4294967295 exceeds the 1 bytes that remain", 0},
		{"bin 2^32", []byte{0xc6, 0xff, 0xff, 0xff, 0xff, 'a'}, skip, "declared length 4294967295 exceeds the 1 bytes that remain", 0},
		{"ext 2^32", []byte{0xc9, 0xff, 0xff, 0xff, 0xff, 1, 'a'}, skip, "declared length 4294967295 exceeds the 1 bytes that remain", 0},
		{"array header cut", []byte{0xdd, 0xff}, skip, "truncated msgpack data", 0},
		{"uint64 cut", []byte{0xcf, 1, 2}, skip, "truncated msgpack data", 0},
		{"empty", nil, skip, "truncated msgpack data", 0},
		{"0xc1", []byte{0xc1}, skip, "invalid msgpack byte 0xc1", 0},
		{"deep arrays", deep(10_000, 0x91), skip, "nesting deeper than 128", 128},
		{"deep maps", append(bytes.Repeat([]byte{0x81, 0xc0}, 10_000), 0xc0), skip, "nesting deeper than 128", 128},
		{"129 deep", deep(129, 0x91), skip, "nesting deeper than 128", 128},
		{"129 deep empty", append(bytes.Repeat([]byte{0x91}, 128), 0x90), skip, "nesting deeper than 128", 128},
		{"bad timestamp size", []byte{0xd5, 0xff, 0, 0}, skip, "timestamp extension of 2 bytes (want 4, 8 or 12)", 0},
		{"bad timestamp nanos", enc(raw{0xc7, 12, 0xff, 0x3b, 0x9a, 0xca, 0x00}, raw(make([]byte, 8))), skip, "timestamp nanoseconds out of range", 0},
		{"negative uint", enc(-1), func(r *Reader) error { _, err := r.Uint("f"); return err }, "must not be negative", 0},
		{"negative int8 as uint", enc(i64(-100)), func(r *Reader) error { _, err := r.Uint("f"); return err }, "must not be negative", 0},
		{"uint64 as int", enc(uint64(math.MaxUint64)), func(r *Reader) error { _, err := r.Int("f"); return err }, "must fit a signed 64-bit integer", 0},
		{"string as int", enc("1"), func(r *Reader) error { _, err := r.Int("f"); return err }, "must be an integer, not string", 0},
		{"array as map", enc([]any{}), func(r *Reader) error { _, err := r.MapHeader("f"); return err }, "must be a map, not array", 0},
		{"string too long", enc("abcd"), func(r *Reader) error { _, err := r.String("f", 3); return err }, "exceeds the limit of 3", 3},
		{"string NUL", enc("a\x00"), func(r *Reader) error { _, err := r.String("f", 0); return err }, "must be valid UTF-8 without NUL bytes", 0},
		{"string bad UTF-8", enc("a\xff"), func(r *Reader) error { _, err := r.String("f", 0); return err }, "must be valid UTF-8 without NUL bytes", 0},
		{"ext as time", enc(ext{typ: 3, data: []byte{1, 2, 3, 4}}), func(r *Reader) error { _, err := r.Time("f"); return err }, "must be a timestamp, not extension type 3", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			err := tc.read(NewReader(tc.b, Limits{}))
			fe := fieldOf(t, err)
			if fe.Field != "f" || fe.Reason != tc.reason || fe.Limit != tc.limit {
				t.Errorf("got %q (limit %d), want %q (limit %d)", err, fe.Limit, "f: "+tc.reason, tc.limit)
			}
			if d := time.Since(start); d > time.Second {
				t.Errorf("took %v", d)
			}
		})
	}
}

func skip(r *Reader) error { return r.Skip("f") }

func TestRawIsExact(t *testing.T) {
	v := enc(obj{1, f32(0.1), "k", []any{bin{0, 255}, ext{typ: -1, data: []byte{0, 0, 0, 1}}, ext{typ: 42, data: []byte("xy")}}, obj{}, nil})
	b := append(append([]byte{}, v...), 0xc3)
	r := NewReader(b, Limits{})
	got, err := r.Raw("v")
	if err != nil || !bytes.Equal(got, v) {
		t.Fatalf("Raw: got %x, %v, want %x", got, err, v)
	}
	if ok, err := r.Bool("b"); err != nil || !ok {
		t.Fatalf("after Raw: got %v, %v, want true", ok, err)
	}
}

// TestMaxDepthBoundary checks that a value exactly at the limit passes.
func TestMaxDepthBoundary(t *testing.T) {
	for _, lim := range []int{1, 5, 128} {
		at := append(bytes.Repeat([]byte{0x91}, lim), 0xc0)
		if err := NewReader(at, Limits{MaxDepth: lim}).Skip("v"); err != nil {
			t.Errorf("depth %d at limit %d: got %v, want nil", lim, lim, err)
		}
		over := append(bytes.Repeat([]byte{0x91}, lim+1), 0xc0)
		err := NewReader(over, Limits{MaxDepth: lim}).Skip("v")
		if err == nil || !strings.Contains(err.Error(), "nesting deeper than") {
			t.Errorf("depth %d at limit %d: got %v, want a depth error", lim+1, lim, err)
		}
	}
}
