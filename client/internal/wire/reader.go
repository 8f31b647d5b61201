package wire

import (
	"encoding/binary"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// The reader never allocates from a declared length before checking it
// against the bytes that remain: a container needs at least one byte per
// element (two per map entry), so a 2^32-element array in a short body
// fails at its header. Nesting is walked iteratively and bounded by the
// reader's depth limit, so deep input fails fast without deep recursion.

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

// Reader is a cursor over one msgpack buffer. Every method takes the name
// of the field it reads, so an error is a *FieldError naming that field; on
// error the cursor position is unspecified. Byte slices it returns alias the
// buffer. A Reader is not safe for concurrent use.
type Reader struct {
	b        []byte
	off      int
	maxDepth int
	s        string // a copy of b, made on the first String call; strings are substrings of it
}

// NewReader returns a Reader over b whose values may nest at most maxDepth
// containers deep.
func NewReader(b []byte, maxDepth int) *Reader {
	return &Reader{b: b, maxDepth: maxDepth}
}

// Remaining returns the number of unread bytes.
func (r *Reader) Remaining() int { return len(r.b) - r.off }

// Offset returns the number of bytes read so far.
func (r *Reader) Offset() int { return r.off }

// Rewind moves the cursor back to off, an earlier Offset, to read a value
// again.
func (r *Reader) Rewind(off int) {
	if off >= 0 && off <= r.off {
		r.off = off
	}
}

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

// WrongType is the error for a value of another type than want ("a map").
func (r *Reader) WrongType(field string, want string) error {
	if r.off >= len(r.b) {
		return errTruncated(field)
	}
	return Invalid(field, "must be %s, not %s", want, typeOf(r.b[r.off]))
}

// uintN reads an n-byte big-endian unsigned integer at r.off+at, or
// ok=false when the data is too short.
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
	t = typeOf(c)
	var lenBytes int
	ext := false
	switch {
	case t == TypeInvalid:
		return t, 0, 0, Invalid(field, "invalid msgpack byte 0x%02x", c)
	case c <= 0x7f || c >= 0xe0:
		return t, 1, 0, nil
	case c <= 0x9f: // fixmap, fixarray
		return t, 1, uint64(c & 0x0f), nil
	case c <= 0xbf: // fixstr
		return t, 1, uint64(c & 0x1f), nil
	case c == 0xc0 || c == 0xc2 || c == 0xc3:
		return t, 1, 0, nil
	case c == 0xca:
		return t, 1, 4, nil
	case c == 0xcb:
		return t, 1, 8, nil
	case c >= 0xcc && c <= 0xcf:
		return t, 1, 1 << (c - 0xcc), nil
	case c >= 0xd0 && c <= 0xd3:
		return t, 1, 1 << (c - 0xd0), nil
	case c >= 0xd4 && c <= 0xd8: // fixext
		if r.off+2 > len(r.b) {
			return t, 0, 0, errTruncated(field)
		}
		return t, 2, 1 << (c - 0xd4), nil
	case c >= 0xc7 && c <= 0xc9:
		lenBytes, ext = 1<<(c-0xc7), true
	case c == 0xc4 || c == 0xd9:
		lenBytes = 1
	case c == 0xc5 || c == 0xda || c == 0xdc || c == 0xde:
		lenBytes = 2
	default: // 0xc6, 0xdb, 0xdd, 0xdf
		lenBytes = 4
	}
	hdr = 1 + lenBytes
	if ext {
		hdr++
	}
	if r.off+hdr > len(r.b) {
		return t, 0, 0, errTruncated(field)
	}
	n, _ = r.uintN(1, lenBytes)
	return t, hdr, n, nil
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
		return 0, r.WrongType(field, "an "+want.String())
	}
	rest := uint64(len(r.b) - r.off - hdr)
	least := n
	if t == TypeMap {
		least = 2 * n
	}
	if least > rest {
		return 0, Invalid(field, "declared %d elements exceed the %d bytes that remain", n, rest)
	}
	r.off += hdr
	return int(n), nil
}

// MapHeader consumes a map header and returns its entry count, which is
// known to fit the remaining data (two bytes per entry at least).
func (r *Reader) MapHeader(field string) (int, error) {
	if r.Peek() != TypeMap {
		return 0, r.WrongType(field, "a map")
	}
	return r.container(field, TypeMap)
}

// ArrayHeader consumes an array header and returns its element count,
// which is known to fit the remaining data (a byte per element at least).
func (r *Reader) ArrayHeader(field string) (int, error) {
	if r.Peek() != TypeArray {
		return 0, r.WrongType(field, "an array")
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
	return false, r.WrongType(field, "a bool")
}

// StringBytes reads a string and returns its bytes, aliasing the buffer,
// without checking their encoding.
func (r *Reader) StringBytes(field string) ([]byte, error) {
	t, hdr, n, err := r.head(field)
	if err != nil {
		return nil, err
	}
	if t != TypeString {
		return nil, r.WrongType(field, "a string")
	}
	return r.payload(field, hdr, n)
}

// String reads a string that must be valid UTF-8 without NUL bytes and at
// most maxLen bytes long (maxLen <= 0: no limit; longer is TooLarge). The
// first call copies the whole buffer once and every string is a substring
// of that copy, so a document's thousands of names cost one allocation.
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
	if r.s == "" {
		r.s = string(r.b)
	}
	return r.s[r.off-len(b) : r.off], nil
}

// Uint reads a non-negative integer of any integer format.
func (r *Reader) Uint(field string) (uint64, error) {
	t, hdr, n, err := r.head(field)
	if err != nil {
		return 0, err
	}
	if t != TypeInt {
		return 0, r.WrongType(field, "an unsigned integer")
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
	if c >= 0xd0 && v>>(8*n-1) != 0 { // signed formats
		return 0, Invalid(field, "must not be negative")
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
		return 0, r.WrongType(field, "an integer")
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

// Time reads a msgpack timestamp (extension -1, any of its three sizes) and
// returns it in UTC.
func (r *Reader) Time(field string) (time.Time, error) {
	if r.Peek() != TypeExt {
		return time.Time{}, r.WrongType(field, "a timestamp")
	}
	_, hdr, n, err := r.head(field)
	if err != nil {
		return time.Time{}, err
	}
	typ := int8(r.b[r.off+hdr-1])
	data, err := r.payload(field, hdr, n)
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
// Nesting deeper than the reader's depth limit fails.
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
				return &FieldError{Field: field, Reason: "nesting deeper than " + strconv.Itoa(r.maxDepth), Limit: int64(r.maxDepth)}
			}
			count := n
			if t == TypeMap {
				count *= 2
			}
			if count > rest {
				return Invalid(field, "declared %d elements exceed the %d bytes that remain", n, rest)
			}
			r.off += hdr
			if count > 0 {
				pending = append(pending, count)
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

// Raw validates and consumes the next value like Skip and returns its
// exact bytes, aliasing the buffer.
func (r *Reader) Raw(field string) ([]byte, error) {
	start := r.off
	if err := r.Skip(field); err != nil {
		return nil, err
	}
	return r.b[start:r.off:r.off], nil
}
