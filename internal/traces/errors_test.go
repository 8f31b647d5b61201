package traces

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCutAndQuote(t *testing.T) {
	long := strings.Repeat("a", 100)
	for _, tc := range []struct {
		name, in, cut, quote string
	}{
		{"short", "abc", "abc", `"abc"`},
		{"exactly the bound", long[:MaxQuoted], long[:MaxQuoted], `"` + long[:MaxQuoted] + `"`},
		{"long", long, long[:MaxQuoted] + "…", `"` + long[:MaxQuoted] + `"…`},
		// 63 ASCII bytes then a 3-byte rune across the bound: cut before it.
		{"rune across the bound", long[:63] + "€€", long[:63] + "…", `"` + long[:63] + `"…`},
	} {
		if got := Cut(tc.in, MaxQuoted); got != tc.cut {
			t.Errorf("%s: Cut = %q, want %q", tc.name, got, tc.cut)
		}
		if got := Quote(tc.in); got != tc.quote {
			t.Errorf("%s: Quote = %s, want %s", tc.name, got, tc.quote)
		}
	}
}

// TestErrorsEchoBoundedInput feeds the decoders inputs whose bad part is
// megabytes long: the error names the field and quotes at most MaxQuoted
// bytes of the value.
func TestErrorsEchoBoundedInput(t *testing.T) {
	huge := strings.Repeat("9", 2<<20)
	key := strings.Repeat("k", 1<<20)
	lim := Limits{MaxBody: 8 << 20}
	for _, tc := range []struct {
		name   string
		body   []byte
		isJSON bool
		field  string
	}{
		{"json number out of range", []byte(`{"rootTLID":"1","input":[["x",` + huge + `]]}`), true, "input[0][1]"},
		{"json number out of range with exponent", []byte(`{"rootTLID":"1","input":[["x",1` + huge[:1000] + `e` + huge[:5000] + `]]}`), true, "input[0][1]"},
		{"json long unknown key, bad value", []byte(`{"rootTLID":"1","` + key + `":[1,}`), true, key[:MaxQuoted] + "…[1]"},
		{"json long key in a value, duplicate", []byte(`{"rootTLID":"1","input":[["x",{"` + key + `":1,"` + key + `":2}]]}`), true, "input[0][1]"},
		{"msgpack long unknown key, truncated value", append(append([]byte{0x82, 0xa8}, "rootTLID\x01"...), append(append([]byte{0xdb, 0, 0x10, 0, 0}, key...), 0xdd, 0, 0, 0, 9)...), false, key[:MaxQuoted] + "…"},
	} {
		_, err := DecodeTrace(tc.body, tc.isJSON, lim)
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%s: error %v, want a *FieldError", tc.name, err)
			continue
		}
		if fe.Field != tc.field {
			t.Errorf("%s: field %.200q, want %.200q", tc.name, fe.Field, tc.field)
		}
		if msg := err.Error(); len(msg) > 600 || !utf8.ValidString(msg) {
			t.Errorf("%s: message of %d bytes: %.300q; want at most 600 bytes of UTF-8", tc.name, len(msg), msg)
		}
	}
	// Invalid bounds whatever is formatted into it.
	err := Invalid(huge, "bad value %s", huge)
	if n := len(err.Error()); n > maxField+maxReason+16 {
		t.Errorf("Invalid with megabytes of input: %d bytes", n)
	}
}
