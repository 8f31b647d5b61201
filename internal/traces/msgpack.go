package traces

import (
	"encoding/binary"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

// This file holds a bounded msgpack reader and the few append helpers the
// encoders share. The reader never allocates from a declared length before
// checking it against the bytes that remain: a container needs at least one
// byte per element (two per map entry), so a 2^32-element array in a short
// body fails at its header. Nesting is walked iteratively and bounded by
// Limits.MaxDepth, so deep input fails fast without deep recursion.

// Type is the kind of a msgpack value.
type Type uint8

// The msgpack value kinds Reader.Peek reports.
const (
	TypeInvalid Type = iota // end of data, or the never-used byte 0xc1
	TypeNil
	TypeBool
	TypeInt // every integer format, signed or unsigned
	TypeFloat
	TypeString
	TypeBin
	TypeArray
	TypeMap
	TypeExt
)

var typeNames = [...]string{"invalid", "nil", "bool", "integer", "float", "string", "binary", "array", "map", "extension"}

// String names the type as error messages do ("map", "integer").
func (t Type) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "invalid"
}

// timestampExt is the msgpack extension type of timestamps.
const timestampExt = -1

// Reader is a cursor over one msgpack buffer. Every method takes the name of
// the field it reads, so an error is a *FieldError naming that field (and
// unwrapping to ErrInvalid); on error the cursor position is unspecified.
// Byte slices it returns alias the buffer. A Reader is not safe for
// concurrent use.
type Reader struct {
	b        []byte
	off      int
	maxDepth int
	names    *strings.Builder // the bytes of the strings String returned, which are slices of it
	// checkUTF8 makes Skip and Raw refuse a str (map keys included) that is
	// not valid UTF-8: set for request bodies in msgpack.
	checkUTF8 bool
}

// NewReader returns a Reader over b. Only lim.MaxDepth is used (zero means
// the default).
func NewReader(b []byte, lim Limits) *Reader {
	return &Reader{b: b, maxDepth: lim.OrDefault().MaxDepth}
}

// Remaining returns the number of unread bytes.
func (r *Reader) Remaining() int { return len(r.b) - r.off }

// Peek returns the type of the next value without consuming it.
func (r *Reader) Peek() Type {
	if r.off >= len(r.b) {
		return TypeInvalid
	}
	return typeOf(r.b[r.off])
}

func typeOf(c byte) Type {
	switch {
	case c <= 0x7f || c >= 0xe0:
		return TypeInt
	case c <= 0x8f:
		return TypeMap
	case c <= 0x9f:
		return TypeArray
	case c <= 0xbf:
		return TypeString
	}
	switch c {
	case 0xc0:
		return TypeNil
	case 0xc2, 0xc3:
		return TypeBool
	case 0xc4, 0xc5, 0xc6:
		return TypeBin
	case 0xc7, 0xc8, 0xc9, 0xd4, 0xd5, 0xd6, 0xd7, 0xd8:
		return TypeExt
	case 0xca, 0xcb:
		return TypeFloat
	case 0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3:
		return TypeInt
	case 0xd9, 0xda, 0xdb:
		return TypeString
	case 0xdc, 0xdd:
		return TypeArray
	case 0xde, 0xdf:
		return TypeMap
	}
	return TypeInvalid
}

func errTruncated(field string) error { return Invalid(field, "truncated msgpack data") }

func errNotUTF8(field string, off int) error {
	return Invalid(field, "strings must be valid UTF-8: the msgpack string at byte %d is not", off)
}

func (r *Reader) wrongType(field string, want string) error {
	if r.off >= len(r.b) {
		return errTruncated(field)
	}
	return Invalid(field, "must be %s, not %s", want, typeOf(r.b[r.off]))
}

func depthError(field string, max int) error {
	return &FieldError{Field: field, Reason: "nesting deeper than " + itoa(max), Limit: int64(max)}
}

// uintN reads an n-byte big-endian unsigned integer at r.off+at, or ok=false
// when the data is too short.
func (r *Reader) uintN(at, n int) (uint64, bool) {
	p := r.off + at
	if p+n > len(r.b) || p+n < p {
		return 0, false
	}
	switch n {
	case 1:
		return uint64(r.b[p]), true
	case 2:
		return uint64(binary.BigEndian.Uint16(r.b[p:])), true
	case 4:
		return uint64(binary.BigEndian.Uint32(r.b[p:])), true
	}
	return binary.BigEndian.Uint64(r.b[p:]), true
}

// format describes what a msgpack format byte starts.
type format struct {
	t        Type
	lenBytes uint8 // big-endian length bytes after the format byte
	n        uint8 // fix formats: the count or length; ints, floats, fixext: payload size
	ext      bool  // an extension type byte ends the header
}

// formats is indexed by format byte, so head needs no branching on ranges.
var formats = func() (fs [256]format) {
	for c := range 256 {
		f := format{t: typeOf(byte(c))}
		switch {
		case c <= 0x7f || c >= 0xe0:
		case c <= 0x8f:
			f.n = uint8(c & 0x0f)
		case c <= 0x9f:
			f.n = uint8(c & 0x0f)
		case c <= 0xbf:
			f.n = uint8(c & 0x1f)
		case c == 0xc4 || c == 0xd9:
			f.lenBytes = 1
		case c == 0xc5 || c == 0xda || c == 0xdc || c == 0xde:
			f.lenBytes = 2
		case c == 0xc6 || c == 0xdb || c == 0xdd || c == 0xdf:
			f.lenBytes = 4
		case c >= 0xc7 && c <= 0xc9:
			f.lenBytes, f.ext = 1<<(c-0xc7), true
		case c == 0xca:
			f.n = 4
		case c == 0xcb:
			f.n = 8
		case c >= 0xcc && c <= 0xcf:
			f.n = 1 << (c - 0xcc)
		case c >= 0xd0 && c <= 0xd3:
			f.n = 1 << (c - 0xd0)
		case c >= 0xd4 && c <= 0xd8:
			f.n, f.ext = 1<<(c-0xd4), true
		}
		fs[c] = f
	}
	return fs
}()

// head decodes the header of the next value without consuming it. For
// strings, bins and exts, n is the payload length (exts: without the type
// byte, which is the last header byte); for arrays and maps, the element or
// entry count; for ints and floats, the payload size; hdr is the header
// length, known to be present. n is not yet checked against the remaining
// data.
func (r *Reader) head(field string) (t Type, hdr int, n uint64, err error) {
	if r.off >= len(r.b) {
		return TypeInvalid, 0, 0, errTruncated(field)
	}
	c := r.b[r.off]
	f := &formats[c]
	if f.lenBytes == 0 {
		switch {
		case f.t == TypeInvalid:
			return TypeInvalid, 0, 0, Invalid(field, "invalid msgpack byte 0x%02x", c)
		case f.ext: // fixext
			if r.off+2 > len(r.b) {
				return f.t, 0, 0, errTruncated(field)
			}
			return TypeExt, 2, uint64(f.n), nil
		}
		return f.t, 1, uint64(f.n), nil
	}
	hdr = 1 + int(f.lenBytes)
	if f.ext {
		hdr++
	}
	if r.off+hdr > len(r.b) {
		return f.t, 0, 0, errTruncated(field)
	}
	p := r.b[r.off+1:]
	switch f.lenBytes {
	case 1:
		n = uint64(p[0])
	case 2:
		n = uint64(binary.BigEndian.Uint16(p))
	default:
		n = uint64(binary.BigEndian.Uint32(p))
	}
	return f.t, hdr, n, nil
}

// payload checks that n payload bytes follow a header of hdr bytes and
// returns them, consuming the value.
func (r *Reader) payload(field string, hdr int, n uint64) ([]byte, error) {
	rest := uint64(len(r.b) - r.off - hdr)
	if n > rest {
		return nil, Invalid(field, "declared length %d exceeds the %d bytes that remain", n, rest)
	}
	start := r.off + hdr
	r.off = start + int(n)
	return r.b[start:r.off:r.off], nil
}

// container consumes an array or map header and checks the declared count
// against the remaining data.
func (r *Reader) container(field string, want Type) (int, error) {
	t, hdr, n, err := r.head(field)
	if err != nil {
		return 0, err
	}
	if t != want {
		return 0, r.wrongType(field, "an "+want.String())
	}
	rest := uint64(len(r.b) - r.off - hdr)
	min := n
	if t == TypeMap {
		min = 2 * n
	}
	if min > rest {
		return 0, Invalid(field, "declared %d elements exceed the %d bytes that remain", n, rest)
	}
	r.off += hdr
	return int(n), nil
}

// MapHeader consumes a map header and returns its entry count, which is
// known to fit the remaining data (two bytes per entry at least).
func (r *Reader) MapHeader(field string) (int, error) {
	if r.Peek() != TypeMap {
		return 0, r.wrongType(field, "a map")
	}
	return r.container(field, TypeMap)
}

// ArrayHeader consumes an array header and returns its element count,
// which is known to fit the remaining data (a byte per element at least).
func (r *Reader) ArrayHeader(field string) (int, error) {
	if r.Peek() != TypeArray {
		return 0, r.wrongType(field, "an array")
	}
	return r.container(field, TypeArray)
}

// Nil consumes the next value and reports true if it is nil; otherwise it
// consumes nothing.
func (r *Reader) Nil() bool {
	if r.off < len(r.b) && r.b[r.off] == 0xc0 {
		r.off++
		return true
	}
	return false
}

// Bool reads a bool.
func (r *Reader) Bool(field string) (bool, error) {
	if r.off < len(r.b) {
		switch r.b[r.off] {
		case 0xc2:
			r.off++
			return false, nil
		case 0xc3:
			r.off++
			return true, nil
		}
	}
	return false, r.wrongType(field, "a bool")
}

// StringBytes reads a string and returns its bytes, aliasing the buffer,
// without checking their encoding.
func (r *Reader) StringBytes(field string) ([]byte, error) {
	t, hdr, n, err := r.head(field)
	if err != nil {
		return nil, err
	}
	if t != TypeString {
		return nil, r.wrongType(field, "a string")
	}
	return r.payload(field, hdr, n)
}

// String reads a string that must be valid UTF-8 without NUL bytes (it
// names things, and PostgreSQL text refuses both) and at most maxLen bytes
// long (maxLen <= 0: no limit; longer is TooLarge). Strings are copied into
// a few doubling buffers of the Reader's, so a document's thousands of
// names cost a few allocations, and only their own bytes: not a copy of
// the whole document, which holds the values too.
func (r *Reader) String(field string, maxLen int) (string, error) {
	b, err := r.StringBytes(field)
	if err != nil {
		return "", err
	}
	if maxLen > 0 && len(b) > maxLen {
		return "", TooLarge(field, int64(maxLen))
	}
	for _, c := range b {
		if c == 0 || c >= utf8.RuneSelf {
			if c == 0 || !utf8.Valid(b) {
				return "", Invalid(field, "must be valid UTF-8 without NUL bytes")
			}
			break
		}
	}
	if len(b) == 0 {
		return "", nil
	}
	if r.names == nil || r.names.Cap()-r.names.Len() < len(b) {
		// A new array, never a regrown one: the strings already returned
		// keep the old. Each at least doubles, so the bytes allocated stay
		// within about twice the names'.
		size := 256
		if r.names != nil {
			size = r.names.Cap()
		}
		r.names = new(strings.Builder)
		r.names.Grow(max(2*len(b), 2*size))
	}
	start := r.names.Len()
	r.names.Write(b)
	return r.names.String()[start:], nil
}

// Uint reads a non-negative integer of any integer format.
func (r *Reader) Uint(field string) (uint64, error) {
	t, hdr, n, err := r.head(field)
	if err != nil {
		return 0, err
	}
	if t != TypeInt {
		return 0, r.wrongType(field, "an unsigned integer")
	}
	c := r.b[r.off]
	if c <= 0x7f {
		r.off++
		return uint64(c), nil
	}
	if c >= 0xe0 {
		return 0, Invalid(field, "must not be negative")
	}
	v, ok := r.uintN(hdr, int(n))
	if !ok {
		return 0, errTruncated(field)
	}
	if c >= 0xd0 { // signed formats
		if v>>(8*n-1) != 0 {
			return 0, Invalid(field, "must not be negative")
		}
	}
	r.off += hdr + int(n)
	return v, nil
}

// Int reads an integer of any integer format that fits an int64.
func (r *Reader) Int(field string) (int64, error) {
	t, hdr, n, err := r.head(field)
	if err != nil {
		return 0, err
	}
	if t != TypeInt {
		return 0, r.wrongType(field, "an integer")
	}
	c := r.b[r.off]
	if c <= 0x7f || c >= 0xe0 {
		r.off++
		return int64(int8(c)), nil
	}
	v, ok := r.uintN(hdr, int(n))
	if !ok {
		return 0, errTruncated(field)
	}
	r.off += hdr + int(n)
	if c >= 0xd0 { // sign-extend
		shift := 64 - 8*n
		return int64(v<<shift) >> shift, nil
	}
	if v > math.MaxInt64 {
		return 0, Invalid(field, "must fit a signed 64-bit integer")
	}
	return int64(v), nil
}

// Float reads a float32 or float64.
func (r *Reader) Float(field string) (float64, error) {
	t, hdr, n, err := r.head(field)
	if err != nil {
		return 0, err
	}
	if t != TypeFloat {
		return 0, r.wrongType(field, "a float")
	}
	v, ok := r.uintN(hdr, int(n))
	if !ok {
		return 0, errTruncated(field)
	}
	r.off += hdr + int(n)
	if n == 4 {
		return float64(math.Float32frombits(uint32(v))), nil
	}
	return math.Float64frombits(v), nil
}

// Bin reads a binary value; the bytes alias the buffer.
func (r *Reader) Bin(field string) ([]byte, error) {
	t, hdr, n, err := r.head(field)
	if err != nil {
		return nil, err
	}
	if t != TypeBin {
		return nil, r.wrongType(field, "binary")
	}
	return r.payload(field, hdr, n)
}

// Ext reads an extension value: its type and data (aliasing the buffer).
// A timestamp (type -1) must be well formed.
func (r *Reader) Ext(field string) (typ int8, data []byte, err error) {
	t, hdr, n, err := r.head(field)
	if err != nil {
		return 0, nil, err
	}
	if t != TypeExt {
		return 0, nil, r.wrongType(field, "an extension")
	}
	typ = int8(r.b[r.off+hdr-1])
	data, err = r.payload(field, hdr, n)
	if err == nil && typ == timestampExt {
		_, err = parseTimestamp(field, data)
	}
	return typ, data, err
}

// Time reads a msgpack timestamp (extension -1, any of its three sizes) and
// returns it in UTC.
func (r *Reader) Time(field string) (time.Time, error) {
	if r.Peek() != TypeExt {
		return time.Time{}, r.wrongType(field, "a timestamp")
	}
	typ, data, err := r.Ext(field)
	if err != nil {
		return time.Time{}, err
	}
	if typ != timestampExt {
		return time.Time{}, Invalid(field, "must be a timestamp, not extension type %d", typ)
	}
	return parseTimestamp(field, data)
}

// parseTimestamp decodes the data of a timestamp extension.
func parseTimestamp(field string, d []byte) (time.Time, error) {
	var sec int64
	var nsec uint32
	switch len(d) {
	case 4:
		sec = int64(binary.BigEndian.Uint32(d))
	case 8:
		v := binary.BigEndian.Uint64(d)
		nsec = uint32(v >> 34)
		sec = int64(v & (1<<34 - 1))
	case 12:
		nsec = binary.BigEndian.Uint32(d)
		sec = int64(binary.BigEndian.Uint64(d[4:]))
	default:
		return time.Time{}, Invalid(field, "timestamp extension of %d bytes (want 4, 8 or 12)", len(d))
	}
	if nsec > 999_999_999 {
		return time.Time{}, Invalid(field, "timestamp nanoseconds out of range")
	}
	return time.Unix(sec, int64(nsec)).UTC(), nil
}

// Skip validates and consumes the next value, nested values included.
// Nesting deeper than Limits.MaxDepth fails; so does a string that is not
// valid UTF-8 when the Reader reads a request body (see DecodeTrace).
func (r *Reader) Skip(field string) error {
	// pending[i] counts the values container i still holds; the walk is
	// iterative so depth costs no stack.
	var small [64]uint64
	pending := small[:0]
	for {
		t, hdr, n, err := r.head(field)
		if err != nil {
			return err
		}
		rest := uint64(len(r.b) - r.off - hdr)
		switch t {
		case TypeArray, TypeMap:
			if len(pending) >= r.maxDepth {
				return depthError(field, r.maxDepth)
			}
			if t == TypeMap {
				n *= 2
			}
			if n > rest {
				if t == TypeMap {
					n /= 2
				}
				return Invalid(field, "declared %d elements exceed the %d bytes that remain", n, rest)
			}
			r.off += hdr
			if n > 0 {
				pending = append(pending, n)
				continue
			}
		case TypeInt, TypeFloat, TypeNil, TypeBool:
			if n > rest {
				return errTruncated(field)
			}
			r.off += hdr + int(n)
		default: // string, bin, ext
			if n > rest {
				return Invalid(field, "declared length %d exceeds the %d bytes that remain", n, rest)
			}
			if t == TypeString && r.checkUTF8 && !utf8.Valid(r.b[r.off+hdr:r.off+hdr+int(n)]) {
				return errNotUTF8(field, r.off)
			}
			if t == TypeExt && int8(r.b[r.off+hdr-1]) == timestampExt {
				if _, err := parseTimestamp(field, r.b[r.off+hdr:r.off+hdr+int(n)]); err != nil {
					return err
				}
			}
			r.off += hdr + int(n)
		}
		// A value is complete: close every container it completes.
		for {
			if len(pending) == 0 {
				return nil
			}
			pending[len(pending)-1]--
			if pending[len(pending)-1] > 0 {
				break
			}
			pending = pending[:len(pending)-1]
		}
	}
}

// Raw validates and consumes the next value like Skip and returns its exact
// bytes, aliasing the buffer.
func (r *Reader) Raw(field string) ([]byte, error) {
	start := r.off
	if err := r.Skip(field); err != nil {
		return nil, err
	}
	return r.b[start:r.off:r.off], nil
}

// itoa avoids strconv in error paths that are otherwise allocation-free.
func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	neg := n < 0
	u := uint64(n)
	if neg {
		u = uint64(-n)
	}
	for u > 0 {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}

// Append helpers: the smallest encoding of each value, as msgpack libraries
// write it, so re-encoding what the JSON mapping produced is canonical.

func appendMapHeader(b []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xde, byte(n>>8), byte(n))
	}
	return append(b, 0xdf, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendArrayHeader(b []byte, n int) []byte {
	switch {
	case n <= 15:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xdc, byte(n>>8), byte(n))
	}
	return append(b, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendStringHeader(b []byte, n int) []byte {
	switch {
	case n <= 31:
		return append(b, 0xa0|byte(n))
	case n <= math.MaxUint8:
		return append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		return append(b, 0xda, byte(n>>8), byte(n))
	}
	return append(b, 0xdb, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendString(b []byte, s string) []byte {
	return append(appendStringHeader(b, len(s)), s...)
}

func appendUint(b []byte, v uint64) []byte {
	switch {
	case v <= 0x7f:
		return append(b, byte(v))
	case v <= math.MaxUint8:
		return append(b, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return append(b, 0xcd, byte(v>>8), byte(v))
	case v <= math.MaxUint32:
		return append(b, 0xce, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}

// appendInt writes non-negative values in the uint family and negative ones
// in the smallest signed format.
func appendInt(b []byte, v int64) []byte {
	switch {
	case v >= 0:
		return appendUint(b, uint64(v))
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return append(b, 0xd1, byte(v>>8), byte(v))
	case v >= math.MinInt32:
		return append(b, 0xd2, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

func appendFloat64(b []byte, f float64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcb), math.Float64bits(f))
}

// appendTime writes t as a msgpack timestamp in its smallest form.
func appendTime(b []byte, t time.Time) []byte {
	sec, nsec := t.Unix(), uint64(t.Nanosecond())
	switch {
	case nsec == 0 && sec >= 0 && sec <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(b, 0xd6, 0xff), uint32(sec))
	case sec >= 0 && sec < 1<<34:
		return binary.BigEndian.AppendUint64(append(b, 0xd7, 0xff), nsec<<34|uint64(sec))
	}
	b = binary.BigEndian.AppendUint32(append(b, 0xc7, 12, 0xff), uint32(nsec))
	return binary.BigEndian.AppendUint64(b, uint64(sec))
}
