package traces

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestJSONToMsgpack(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
	}{
		{`null`, enc(nil)},
		{` true `, enc(true)},
		{`false`, enc(false)},
		{`0`, []byte{0x00}},
		{`-0`, enc(math.Copysign(0, -1))},
		{`127`, []byte{0x7f}},
		{`128`, []byte{0xcc, 0x80}},
		{`255`, []byte{0xcc, 0xff}},
		{`256`, []byte{0xcd, 1, 0}},
		{`65536`, []byte{0xce, 0, 1, 0, 0}},
		{`4294967296`, []byte{0xcf, 0, 0, 0, 1, 0, 0, 0, 0}},
		{`18446744073709551615`, []byte{0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		{`-1`, []byte{0xff}},
		{`-32`, []byte{0xe0}},
		{`-33`, []byte{0xd0, 0xdf}},
		{`-129`, []byte{0xd1, 0xff, 0x7f}},
		{`-32769`, []byte{0xd2, 0xff, 0xff, 0x7f, 0xff}},
		{`-2147483649`, []byte{0xd3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff}},
		{`-9223372036854775808`, []byte{0xd3, 0x80, 0, 0, 0, 0, 0, 0, 0}},
		{`-9223372036854775809`, enc(-9223372036854775809.0)},
		{`18446744073709551616`, enc(18446744073709551616.0)},
		{`1.0`, enc(1.0)},
		{`1e2`, enc(100.0)},
		{`-1.5E-3`, enc(-0.0015)},
		{`""`, []byte{0xa0}},
		{`"abc"`, enc("abc")},
		{`"` + strings.Repeat("x", 32) + `"`, enc(strings.Repeat("x", 32))},
		{`"` + strings.Repeat("x", 256) + `"`, enc(strings.Repeat("x", 256))},
		{`"a\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"`, enc("a\"\\/\b\f\n\r\té😀")},
		{`[]`, []byte{0x90}},
		{`[1,[2,[]],{}]`, enc([]any{1, []any{2, []any{}}, obj{}})},
		{`{"b":1,"a":2}`, enc(obj{"b", 1, "a", 2})},
		{`{"a\u0062":{"":null}}`, enc(obj{"ab", obj{"", nil}})},
		{` [ 1 , { "k" : [ ] } ] `, enc([]any{1, obj{"k", []any{}}})},
	} {
		got, err := JSONToMsgpack(nil, []byte(tc.in), Limits{})
		if err != nil || !bytes.Equal(got, tc.want) {
			t.Errorf("JSONToMsgpack(%.40s): got %x, %v, want %x", tc.in, got, err, tc.want)
		}
	}
}

// TestJSONToMsgpackLarge covers containers whose header grows once their
// count passes 15 and 65535, nested so that inner moves precede outer ones.
func TestJSONToMsgpackLarge(t *testing.T) {
	for _, n := range []int{15, 16, 65535, 65536} {
		var js strings.Builder
		want := []any{}
		js.WriteString("[")
		for i := range n {
			if i > 0 {
				js.WriteString(",")
			}
			js.WriteString(`{"k` + strconv.Itoa(i%20) + `":[` + strconv.Itoa(i) + `]}`)
			want = append(want, obj{"k" + strconv.Itoa(i%20), []any{i}})
		}
		js.WriteString("]")
		got, err := JSONToMsgpack(nil, []byte(js.String()), Limits{})
		if w := enc(want); err != nil || !bytes.Equal(got, w) {
			t.Errorf("n=%d: got %d bytes, %v, want %d bytes", n, len(got), err, len(w))
		}
		// And an object with n keys, which also switches duplicate checks
		// to a set.
		js.Reset()
		wobj := obj{}
		js.WriteString("{")
		for i := range n {
			if i > 0 {
				js.WriteString(",")
			}
			js.WriteString(`"k` + strconv.Itoa(i) + `":{"x":` + strconv.Itoa(i) + `}`)
			wobj = append(wobj, "k"+strconv.Itoa(i), obj{"x", i})
		}
		js.WriteString("}")
		got, err = JSONToMsgpack(nil, []byte(js.String()), Limits{})
		if w := enc(wobj); err != nil || !bytes.Equal(got, w) {
			t.Errorf("object n=%d: got %d bytes, %v, want %d bytes", n, len(got), err, len(w))
		}
	}
}

// TestJSONToMsgpackNestedLarge nests large and small containers so that
// long headers are inserted at many levels at once.
func TestJSONToMsgpackNestedLarge(t *testing.T) {
	var build func(depth, seed int) (string, any)
	build = func(depth, seed int) (string, any) {
		if depth == 0 {
			return strconv.Itoa(seed), seed
		}
		n := []int{17, 2, 16, 0, 40, 15}[seed%6]
		var js strings.Builder
		if seed%2 == 0 {
			v := []any{}
			js.WriteString("[")
			for i := range n {
				if i > 0 {
					js.WriteString(",")
				}
				ej, ev := build(depth-1, seed+i)
				js.WriteString(ej)
				v = append(v, ev)
			}
			js.WriteString("]")
			return js.String(), v
		}
		v := obj{}
		js.WriteString("{")
		for i := range n {
			if i > 0 {
				js.WriteString(",")
			}
			ej, ev := build(depth-1, seed*7+i)
			js.WriteString(`"k` + strconv.Itoa(i) + `":` + ej)
			v = append(v, "k"+strconv.Itoa(i), ev)
		}
		js.WriteString("}")
		return js.String(), v
	}
	for seed := range 6 {
		js, v := build(3, seed)
		got, err := JSONToMsgpack([]byte("prefix"), []byte(js), Limits{})
		if want := append([]byte("prefix"), enc(v)...); err != nil || !bytes.Equal(got, want) {
			t.Errorf("seed %d: got %d bytes, %v, want %d bytes", seed, len(got), err, len(want))
		}
	}
}

func TestJSONToMsgpackErrors(t *testing.T) {
	manyKeys := func(dup string) string {
		var b strings.Builder
		b.WriteString(`{"a":{`)
		for i := range 40 {
			b.WriteString(`"k` + strconv.Itoa(i) + `":1,`)
		}
		b.WriteString(`"` + dup + `":2}}`)
		return b.String()
	}
	for _, tc := range []struct {
		in, want string
		limit    int64
	}{
		{``, "body: invalid JSON: unexpected end of input", 0},
		{`   `, "body: invalid JSON: unexpected end of input", 0},
		{`nul`, "body: invalid JSON: unexpected end of input", 0},
		{`nulL`, "body: invalid JSON: unexpected 'n' at offset 0", 0},
		{`[1,]`, "[1]: invalid JSON: unexpected ']' at offset 3", 0},
		{`[1 2]`, "[1]: invalid JSON: unexpected '2' at offset 3", 0},
		{`{"a":1,"b":{"c":[1,x]}}`, "b.c[1]: invalid JSON: unexpected 'x' at offset 19", 0},
		{`{"a" 1}`, "a: invalid JSON: unexpected '1' at offset 5", 0},
		{`{1:2}`, "body: invalid JSON: unexpected '1' at offset 1", 0},
		{`{"a":1,"a":2}`, "a: duplicate key", 0},
		{`{"x":{"a":1,"\u0061":2}}`, "x.a: duplicate key", 0},
		{manyKeys("k3"), "a.k3: duplicate key", 0},
		{manyKeys("k39"), "a.k39: duplicate key", 0},
		{`01`, "body: invalid JSON: data after the value at offset 1", 0},
		{`1.`, "body: invalid JSON: unexpected end of input", 0},
		{`1.e5`, "body: invalid JSON: unexpected 'e' at offset 2", 0},
		{`1e`, "body: invalid JSON: unexpected end of input", 0},
		{`-`, "body: invalid JSON: unexpected end of input", 0},
		{`-a`, "body: invalid JSON: unexpected 'a' at offset 1", 0},
		{`+1`, "body: invalid JSON: unexpected '+' at offset 0", 0},
		{`1e400`, "body: number 1e400 out of range", 0},
		{`"abc`, "body: invalid JSON: unexpected end of input", 0},
		{"\"a\x01\"", "body: invalid JSON: control character 0x01 in string at offset 2", 0},
		{`"\x"`, "body: invalid JSON: bad escape at offset 1", 0},
		{`"\u12x4"`, "body: invalid JSON: bad \\u escape at offset 1", 0},
		{`"\u12`, "body: invalid JSON: unexpected end of input", 0},
		{`[] []`, "body: invalid JSON: data after the value at offset 3", 0},
		{"\"bad \xff utf8 é\"", "body: invalid UTF-8 in a string at offset 5", 0},
		{"[\"ok\",{\"k\":\"\xc3\"}]", "[1].k: invalid UTF-8 in a string at offset 12", 0},
		{"{\"\xed\xa0\x80\":1}", "body: invalid UTF-8 in a string at offset 2", 0}, // a surrogate encoded in UTF-8
		{`"lone \ud800 high"`, "body: invalid JSON: lone surrogate \\ud800 at offset 6", 0},
		{`["x","\udc00 low"]`, "[1]: invalid JSON: lone surrogate \\udc00 at offset 6", 0},
		{`"\ud800\u0041"`, "body: invalid JSON: lone surrogate \\ud800 at offset 1", 0},
		{strings.Repeat("[", 10_000), "[0][0][0][0][0][0][0][0]: nesting deeper than 128", 128},
		{strings.Repeat(`{"a":`, 10_000), "a.a.a.a.a.a.a.a: nesting deeper than 128", 128},
		{strings.Repeat("[", 129) + strings.Repeat("]", 129), "[0][0][0][0][0][0][0][0]: nesting deeper than 128", 128},
	} {
		_, err := JSONToMsgpack(nil, []byte(tc.in), Limits{})
		if err == nil {
			t.Errorf("JSONToMsgpack(%.30s): got no error, want %q", tc.in, tc.want)
			continue
		}
		if fe := fieldOf(t, err); err.Error() != tc.want || fe.Limit != tc.limit {
			t.Errorf("JSONToMsgpack(%.30s): got %q (limit %d), want %q (limit %d)", tc.in, err, fe.Limit, tc.want, tc.limit)
		}
	}
	// Exactly at the limit is fine.
	at := strings.Repeat("[", 128) + strings.Repeat("]", 128)
	if _, err := JSONToMsgpack(nil, []byte(at), Limits{}); err != nil {
		t.Errorf("128 deep: got %v, want nil", err)
	}
}

func TestAppendJSON(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"nil", enc(nil), `null`},
		{"bools", enc([]any{true, false}), `[true,false]`},
		{"ints", enc([]any{0, -1, i64(-200), i64(math.MinInt64), uint64(math.MaxUint64), 70000}), `[0,-1,-200,-9223372036854775808,18446744073709551615,70000]`},
		{"signed formats holding positives", []byte{0x93, 0xd0, 0x05, 0xd1, 0x01, 0x00, 0xd3, 0, 0, 0, 0, 0, 0, 0, 9}, `[5,256,9]`},
		{"float64", enc([]any{1.5, 0.1, 1e21, 1e-7, 100.0, math.Copysign(0, -1), 123456789.0}), `[1.5,0.1,1e+21,1e-7,100,-0,123456789]`},
		{"float32", enc([]any{f32(0.1), f32(1.5), f32(1e21), f32(float32(1) / 3)}), `[0.1,1.5,1e+21,0.33333334]`},
		{"non-finite", enc([]any{math.NaN(), math.Inf(1), math.Inf(-1), f32(float32(math.Inf(1)))}), `[null,null,null,null]`},
		{"string escapes", enc("q\" b\\ \n\r\t \x01 \x7f é 😀 \u2028\u2029 <&>"), `"q\" b\\ \n\r\t \u0001 ` + "\x7f é 😀" + ` \u2028\u2029 <&>"`},
		{"invalid UTF-8", enc("a\xffb\xc3"), `"a\ufffdb\ufffd"`},
		{"bin", enc(bin{0, 1, 2, 253, 254, 255}), `"AAEC/f7/"`},
		{"empty bin", enc(bin{}), `""`},
		{"timestamp 32", enc(time.Unix(1_700_000_000, 0)), `"2023-11-14T22:13:20Z"`},
		{"timestamp 64", enc(time.Unix(1_700_000_000, 120_000_000)), `"2023-11-14T22:13:20.12Z"`},
		{"timestamp 96", enc(time.Unix(-1, 1)), `"1969-12-31T23:59:59.000000001Z"`},
		{"ext", enc(ext{typ: 5, data: []byte("abc")}), `{"$ext":{"type":5,"data":"YWJj"}}`},
		{"negative ext", enc(ext{typ: -128, data: []byte{}}), `{"$ext":{"type":-128,"data":""}}`},
		{"fixext", []byte{0xd4, 0x07, 0xff}, `{"$ext":{"type":7,"data":"/w=="}}`},
		{"map order kept", enc(obj{"z", 1, "a", 2}), `{"z":1,"a":2}`},
		{"non-string keys", enc(obj{1, "a", -2, "b", true, "c", nil, "d", 1.5, "e", []any{1, "x"}, "f", obj{"k", 1}, "g", bin{1}, "h"}),
			`{"1":"a","-2":"b","true":"c","null":"d","1.5":"e","[1,\"x\"]":"f","{\"k\":1}":"g","AQ==":"h"}`},
		{"nested", enc(obj{"a", []any{obj{}, []any{}, obj{"b", []any{nil}}}}), `{"a":[{},[],{"b":[null]}]}`},
	} {
		got, err := AppendJSON([]byte("prefix:"), tc.in)
		if err != nil || string(got) != "prefix:"+tc.want {
			t.Errorf("%s: got %s, %v, want prefix:%s", tc.name, got, err, tc.want)
		}
		if err == nil && !json.Valid(got[len("prefix:"):]) {
			t.Errorf("%s: not valid JSON: %s", tc.name, got)
		}
	}
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	for _, f := range []float64{0, 1, -1, 0.1, 1e20, 1e21, 1e-6, 1e-7, 123.456, 5e-324, math.MaxFloat64, 1.7976931348623157e308, 2.5e-8} {
		want, _ := json.Marshal(f)
		if got := appendJSONFloat(nil, f, 64); string(got) != string(want) {
			t.Errorf("float64 %v: got %s, want %s", f, got, want)
		}
		want32, _ := json.Marshal(float32(f))
		if got := appendJSONFloat(nil, float64(float32(f)), 32); !math.IsInf(float64(float32(f)), 0) && string(got) != string(want32) {
			t.Errorf("float32 %v: got %s, want %s", f, got, want32)
		}
	}
}

func TestAppendJSONErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "value: truncated msgpack data"},
		{"truncated array", []byte{0x92, 0x01, 0xcd}, "value: truncated msgpack data"},
		{"trailing", []byte{0x01, 0x02}, "value: trailing bytes after the msgpack value"},
		{"0xc1", []byte{0x91, 0xc1}, "value: invalid msgpack byte 0xc1"},
		{"bad timestamp", []byte{0xd5, 0xff, 0, 0}, "value: timestamp extension of 2 bytes (want 4, 8 or 12)"},
		{"too deep", append(bytes.Repeat([]byte{0x91}, 20_000), 0xc0), "value: nesting deeper than 10000"},
		{"2^32 map", []byte{0xdf, 0xff, 0xff, 0xff, 0xff, 0}, "value: declared 4294967295 elements exceed the 1 bytes that remain"},
	} {
		_, err := AppendJSON(nil, tc.in)
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

// TestJSONRoundTrip: JSON -> msgpack -> JSON gives back the same text
// modulo whitespace for JSON in the mapping's canonical spelling.
func TestJSONRoundTrip(t *testing.T) {
	for _, in := range []string{
		`{"a":[1,-1,0,1.5,-0.25,1e+300,1e-7,18446744073709551615,-9223372036854775808],"b":{"c":null,"d":true,"e":false},"":""}`,
		`["é😀","\u0001\n\t\"\\",[],{},[[[]]]]`,
		`{"z":1,"y":2,"x":{"w":[{"v":3}]}}`,
	} {
		mp, err := JSONToMsgpack(nil, []byte(in), Limits{})
		if err != nil {
			t.Fatal(err)
		}
		out, err := AppendJSON(nil, mp)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := compactJSON(t, out), compactJSON(t, []byte(in)); got != want {
			t.Errorf("round trip:\ngot  %s\nwant %s", got, want)
		}
	}
}

func TestValueMarshalers(t *testing.T) {
	v := Value(enc(obj{"a", bin{1}}))
	b, err := json.Marshal(struct{ V Value }{v})
	if err != nil || string(b) != `{"V":{"a":"AQ=="}}` {
		t.Errorf("json.Marshal: got %s, %v", b, err)
	}
	var back struct{ V Value }
	if err := json.Unmarshal([]byte(`{"V":{"a":[1,"x"]}}`), &back); err != nil || !bytes.Equal(back.V, enc(obj{"a", []any{1, "x"}})) {
		t.Errorf("json.Unmarshal: got %x, %v", back.V, err)
	}
	if mp, err := v.MarshalMsgpack(); err != nil || !bytes.Equal(mp, v) {
		t.Errorf("MarshalMsgpack: got %x, %v", mp, err)
	}
	var u Value
	if err := u.UnmarshalMsgpack(v); err != nil || !bytes.Equal(u, v) {
		t.Errorf("UnmarshalMsgpack: got %x, %v", u, err)
	}
	if err := u.UnmarshalMsgpack([]byte{0x92, 1}); err == nil {
		t.Error("UnmarshalMsgpack of a truncated array: got nil error")
	}
	if b, err := Value(nil).MarshalJSON(); err != nil || string(b) != "null" {
		t.Errorf("empty Value: got %s, %v", b, err)
	}
}

func BenchmarkJSONToMsgpack(b *testing.B) {
	for _, size := range []int{2 << 10, 16 << 10} {
		js, err := AppendTraceJSON(nil, benchTrace(b, size))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("size=%dKiB", size>>10), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(js)))
			buf := make([]byte, 0, len(js))
			for b.Loop() {
				if _, err := JSONToMsgpack(buf[:0], js, Limits{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendJSON(b *testing.B) {
	tr := benchTrace(b, 16<<10)
	mp, err := JSONToMsgpack(nil, must(AppendTraceJSON(nil, tr)), Limits{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(mp)))
	buf := make([]byte, 0, 4*len(mp))
	for b.Loop() {
		if _, err := AppendJSON(buf[:0], mp); err != nil {
			b.Fatal(err)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
