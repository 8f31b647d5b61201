package traces

import (
	"crypto/rand"
	"encoding/binary"
	"strconv"
	"time"
)

// UUID is a 16-byte RFC 9562 UUID. CanvasID and TraceID are UUIDs.
type UUID [16]byte

// String returns the canonical lowercase 8-4-4-4-12 form.
func (u UUID) String() string { return string(u.appendText(make([]byte, 0, 36))) }

// Version returns the UUID version nibble.
func (u UUID) Version() int { return int(u[6] >> 4) }

// IsZero reports whether u is the nil UUID.
func (u UUID) IsZero() bool { return u == UUID{} }

// parseUUID accepts only the canonical lowercase 8-4-4-4-12 form: anything
// else (uppercase, braces, "..", "%2F") is not a name tracegw ever builds.
func parseUUID(field, s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, Invalid(field, "must be a UUID in canonical lowercase 8-4-4-4-12 form")
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, ok1 := fromHex(s[i])
		lo, ok2 := fromHex(s[i+1])
		if !ok1 || !ok2 {
			return UUID{}, Invalid(field, "must be a UUID in canonical lowercase 8-4-4-4-12 form")
		}
		u[j] = hi<<4 | lo
		j++
		i += 2
	}
	return u, nil
}

func fromHex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// CanvasID identifies a canvas (any UUID version).
type CanvasID UUID

// ParseCanvasID parses a canonical lowercase UUID. The error is a *FieldError
// naming "canvasID".
func ParseCanvasID(s string) (CanvasID, error) {
	u, err := parseUUID("canvasID", s)
	if err == nil && u.IsZero() {
		err = Invalid("canvasID", "must not be the nil UUID")
	}
	return CanvasID(u), err
}

func (c CanvasID) String() string { return UUID(c).String() }

// TraceID identifies a trace: a UUIDv7 whose first 48 bits are the Unix
// milliseconds of the trace's timestamp, so IDs sort by time.
type TraceID UUID

// ParseTraceID parses a canonical lowercase version-7 UUID. field names the
// field for the *FieldError ("traceID" when empty).
func ParseTraceID(s string) (TraceID, error) { return parseTraceIDField("traceID", s) }

func parseTraceIDField(field, s string) (TraceID, error) {
	u, err := parseUUID(field, s)
	if err != nil {
		return TraceID{}, err
	}
	if u.Version() != 7 || u[8]&0xc0 != 0x80 {
		return TraceID{}, Invalid(field, "must be a version-7 UUID (RFC 9562)")
	}
	return TraceID(u), nil
}

// NewTraceID returns a fresh UUIDv7 for time t: 48 bits of Unix milliseconds,
// then 74 random bits.
func NewTraceID(t time.Time) TraceID {
	var u UUID
	if _, err := rand.Read(u[6:]); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(u[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(u[2:6], uint32(ms))
	u[6] = 0x70 | u[6]&0x0f
	u[8] = 0x80 | u[8]&0x3f
	return TraceID(u)
}

// Time returns the millisecond time embedded in the ID.
func (id TraceID) Time() time.Time {
	ms := int64(binary.BigEndian.Uint16(id[0:2]))<<32 | int64(binary.BigEndian.Uint32(id[2:6]))
	return time.UnixMilli(ms).UTC()
}

func (id TraceID) String() string { return UUID(id).String() }

// IsZero reports whether the ID is unset.
func (id TraceID) IsZero() bool { return UUID(id).IsZero() }

// TLID identifies a toplevel: a handler or a function.
type TLID uint64

// ParseTLID parses a decimal unsigned 64-bit integer.
func ParseTLID(field, s string) (TLID, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || s == "" || (len(s) > 1 && s[0] == '0') {
		return 0, Invalid(field, "must be an unsigned 64-bit integer in decimal")
	}
	return TLID(n), nil
}

func (t TLID) String() string { return strconv.FormatUint(uint64(t), 10) }
