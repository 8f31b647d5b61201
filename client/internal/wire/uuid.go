package wire

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"time"
)

// UUID is a 16-byte RFC 9562 UUID.
type UUID [16]byte

// canonicalForm is the reason a UUID's text was refused.
const canonicalForm = "must be a UUID in canonical lowercase 8-4-4-4-12 form"

// ParseUUID accepts only the canonical lowercase 8-4-4-4-12 form, the only
// one the gateway accepts in a path or document. The error is a *FieldError
// naming field.
func ParseUUID(field, s string) (UUID, error) {
	var u UUID
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return u, Invalid(field, canonicalForm)
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
			return UUID{}, Invalid(field, canonicalForm)
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

// ParseV7 parses a canonical lowercase version-7 UUID (RFC 9562 variant).
// The error is a *FieldError naming field.
func ParseV7(field, s string) (UUID, error) {
	u, err := ParseUUID(field, s)
	if err != nil {
		return UUID{}, err
	}
	if u[6]>>4 != 7 || u[8]&0xc0 != 0x80 {
		return UUID{}, Invalid(field, "must be a version-7 UUID (RFC 9562)")
	}
	return u, nil
}

// NewV7 returns a fresh UUIDv7 for time t: 48 bits of Unix milliseconds,
// then 74 random bits.
func NewV7(t time.Time) UUID {
	var u UUID
	if _, err := rand.Read(u[6:]); err != nil {
		panic("crypto/rand: " + err.Error()) // never fails on supported platforms
	}
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(u[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(u[2:6], uint32(ms))
	u[6] = 0x70 | u[6]&0x0f
	u[8] = 0x80 | u[8]&0x3f
	return u
}

// Time returns the millisecond time a UUIDv7 carries, in UTC.
func (u UUID) Time() time.Time {
	ms := int64(binary.BigEndian.Uint16(u[0:2]))<<32 | int64(binary.BigEndian.Uint32(u[2:6]))
	return time.UnixMilli(ms).UTC()
}

// IsZero reports whether u is the nil UUID.
func (u UUID) IsZero() bool { return u == UUID{} }

// String returns the canonical lowercase 8-4-4-4-12 form.
func (u UUID) String() string { return string(u.AppendText(make([]byte, 0, 36))) }

// AppendText appends the canonical form to b.
func (u UUID) AppendText(b []byte) []byte {
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
