package traces

import (
	"encoding/base64"
	"math"
	"strconv"
	"time"
	"unicode/utf8"
)

// AppendJSON appends the JSON form of the msgpack value v to dst by the
// mapping above. The error is a *FieldError (field "value", wrapping
// ErrInvalid) when v is not exactly one well-formed msgpack value or nests
// deeper than 10,000; dst is then returned as far as it was written.
func AppendJSON(dst []byte, v Value) ([]byte, error) {
	r := Reader{b: v, maxDepth: maxJSONDepth}
	dst, err := r.appendJSON(dst, 0)
	if err == nil && r.off != len(v) {
		err = Invalid("value", "trailing bytes after the msgpack value")
	}
	return dst, err
}

func (r *Reader) appendJSON(dst []byte, depth int) ([]byte, error) {
	const field = "value"
	t, hdr, n, err := r.head(field)
	if err != nil {
		return dst, err
	}
	c := r.b[r.off]
	switch t {
	case TypeNil:
		r.off++
		return append(dst, "null"...), nil
	case TypeBool:
		r.off++
		return strconv.AppendBool(dst, c == 0xc3), nil
	case TypeInt:
		if c >= 0xe0 || (c >= 0xd0 && c <= 0xd3) {
			i, err := r.Int(field)
			return strconv.AppendInt(dst, i, 10), err
		}
		u, err := r.Uint(field)
		return strconv.AppendUint(dst, u, 10), err
	case TypeFloat:
		f, err := r.Float(field)
		return appendJSONFloat(dst, f, int(n)*8), err
	case TypeString, TypeBin:
		b, err := r.payload(field, hdr, n)
		if err != nil {
			return dst, err
		}
		if t == TypeBin {
			return appendBase64(dst, b), nil
		}
		return appendJSONString(dst, b), nil
	case TypeExt:
		typ, data, err := r.Ext(field)
		if err != nil {
			return dst, err
		}
		return appendJSONExt(dst, typ, data), nil
	case TypeArray, TypeMap:
		if depth >= r.maxDepth {
			return dst, depthError(field, r.maxDepth)
		}
		cnt, err := r.container(field, t)
		if err != nil {
			return dst, err
		}
		if t == TypeArray {
			return r.appendJSONArray(dst, cnt, depth+1)
		}
		return r.appendJSONObject(dst, cnt, depth+1)
	}
	return dst, Invalid(field, "invalid msgpack byte 0x%02x", c)
}

func (r *Reader) appendJSONArray(dst []byte, n, depth int) ([]byte, error) {
	dst = append(dst, '[')
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = r.appendJSON(dst, depth); err != nil {
			return dst, err
		}
	}
	return append(dst, ']'), nil
}

func (r *Reader) appendJSONObject(dst []byte, n, depth int) ([]byte, error) {
	dst = append(dst, '{')
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		var err error
		if dst, err = r.appendJSONKey(dst, depth); err != nil {
			return dst, err
		}
		dst = append(dst, ':')
		if dst, err = r.appendJSON(dst, depth); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

// appendJSONExt renders a timestamp as an RFC 3339 string and any other
// extension as {"$ext":{"type":N,"data":"<base64>"}}. Timestamps were
// validated by Reader.Ext.
func appendJSONExt(dst []byte, typ int8, data []byte) []byte {
	if typ == timestampExt {
		tm, _ := parseTimestamp("value", data)
		dst = append(dst, '"')
		dst = tm.AppendFormat(dst, time.RFC3339Nano)
		return append(dst, '"')
	}
	dst = append(dst, `{"$ext":{"type":`...)
	dst = strconv.AppendInt(dst, int64(typ), 10)
	dst = append(dst, `,"data":`...)
	dst = appendBase64(dst, data)
	return append(dst, "}}"...)
}

// appendJSONKey writes a map key as a JSON string: a str as is, anything
// else as its JSON text (quoted unless that text already is a string).
func (r *Reader) appendJSONKey(dst []byte, depth int) ([]byte, error) {
	if r.Peek() == TypeString {
		s, err := r.StringBytes("value")
		if err != nil {
			return dst, err
		}
		return appendJSONString(dst, s), nil
	}
	p := len(dst)
	dst, err := r.appendJSON(dst, depth)
	if err != nil || dst[p] == '"' {
		return dst, err
	}
	text := append([]byte(nil), dst[p:]...)
	return appendJSONString(dst[:p], text), nil
}

func appendBase64(dst, b []byte) []byte {
	dst = append(dst, '"')
	dst = base64.StdEncoding.AppendEncode(dst, b)
	return append(dst, '"')
}

// appendJSONFloat formats f as encoding/json does; bits is 32 or 64.
func appendJSONFloat(b []byte, f float64, bits int) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(b, "null"...)
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 {
		if bits == 64 && (abs < 1e-6 || abs >= 1e21) ||
			bits == 32 && (float32(abs) < 1e-6 || float32(abs) >= 1e21) {
			format = 'e'
		}
	}
	b = strconv.AppendFloat(b, f, format, -1, bits)
	if format == 'e' {
		// Clean up e-09 to e-9, as encoding/json does.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendJSONStr is appendJSONString for a string, copying only when s
// needs escaping.
func appendJSONStr(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			return appendJSONString(b, []byte(s))
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONString writes s as a JSON string, replacing invalid UTF-8 with
// U+FFFD as encoding/json does.
func appendJSONString(b []byte, s []byte) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		ru, size := utf8.DecodeRune(s[i:])
		switch {
		case ru == utf8.RuneError && size == 1:
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
		case ru == '\u2028' || ru == '\u2029':
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[ru&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
