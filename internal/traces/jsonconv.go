package traces

import (
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// JSONToMsgpack appends the msgpack form of the JSON text data (exactly one
// value, surrounded by optional whitespace) to dst by the mapping above. It
// streams over data once, keeping object key order. Errors are *FieldErrors
// wrapping ErrInvalid whose field is the JSON path of the problem
// ("a.b[2]", or "body" at the top); nesting deeper than lim.MaxDepth names
// the limit.
func JSONToMsgpack(dst []byte, data []byte, lim Limits) ([]byte, error) {
	d := lim.OrDefault().MaxDepth
	return jsonToMsgpack(dst, data, d, d, 8)
}

// jsonToMsgpack converts with a frame budget of maxDepth, reporting
// reportDepth in depth errors, and names at most pathFrames path segments in
// errors. The document decoders allow a few frames for the document's own
// structure around each value, then check each value's depth exactly.
func jsonToMsgpack(dst, data []byte, maxDepth, reportDepth, pathFrames int) ([]byte, error) {
	c := jsonConv{in: data, out: dst, maxDepth: maxDepth, reportDepth: reportDepth, pathFrames: pathFrames}
	c.frames = c.frameBuf[:0]
	if err := c.run(); err != nil {
		return dst, err
	}
	c.insertHeaders()
	return c.out, nil
}

type jsonFrame struct {
	obj  bool
	hdr  int // offset in out of the placeholder header byte
	n    int // completed elements (objects: entries)
	keys int // index in jsonConv.keys of this object's first key
	seen map[string]struct{}
}

type keySpan struct{ start, end int } // a key's payload in out

type jsonConv struct {
	in          []byte
	pos         int
	out         []byte
	maxDepth    int
	reportDepth int
	pathFrames  int
	frames      []jsonFrame
	keys        []keySpan
	scratch     []byte
	strStart    int // offset in out of the payload of the last str written
	long        []longHeader
	frameBuf    [16]jsonFrame
}

// smallObject is the number of keys checked for duplicates by a linear scan
// before an object switches to a set.
const smallObject = 16

func (c *jsonConv) ws() {
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *jsonConv) run() error {
	for {
		// A value starts here.
		c.ws()
		if c.pos >= len(c.in) {
			return c.errEOF()
		}
		switch ch := c.in[c.pos]; ch {
		case '{', '[':
			empty, err := c.open(ch)
			if err != nil {
				return err
			}
			if !empty {
				continue
			}
		default:
			if err := c.scalar(ch); err != nil {
				return err
			}
		}
		done, err := c.complete()
		if done || err != nil {
			return err
		}
	}
}

// open starts an array or object (and reads the first key of an object).
// An empty one is closed at once and reported, since it is a complete value.
func (c *jsonConv) open(ch byte) (empty bool, err error) {
	if len(c.frames) >= c.maxDepth {
		return false, depthError(c.path(""), c.reportDepth)
	}
	c.pos++
	f := jsonFrame{obj: ch == '{', hdr: len(c.out), keys: len(c.keys)}
	if f.obj {
		c.out = append(c.out, 0x80)
	} else {
		c.out = append(c.out, 0x90)
	}
	c.frames = append(c.frames, f)
	c.ws()
	if c.pos < len(c.in) && c.in[c.pos] == ch+2 { // '}' or ']'
		c.pos++
		c.close()
		return true, nil
	}
	if f.obj {
		return false, c.key()
	}
	return false, nil
}

// scalar converts a string, literal or number starting with ch.
func (c *jsonConv) scalar(ch byte) error {
	switch ch {
	case '"':
		return c.str()
	case 't':
		return c.lit("true", 0xc3)
	case 'f':
		return c.lit("false", 0xc2)
	case 'n':
		return c.lit("null", 0xc0)
	}
	if ch != '-' && (ch < '0' || ch > '9') {
		return c.errUnexpected()
	}
	return c.num()
}

// complete is called after a value: it closes every container the value
// completes and, unless the text is done, reads up to the next value (past
// a comma and, in an object, the next key).
func (c *jsonConv) complete() (done bool, err error) {
	for len(c.frames) > 0 {
		f := &c.frames[len(c.frames)-1]
		f.n++
		c.ws()
		if c.pos >= len(c.in) {
			return false, c.errEOF()
		}
		end := byte(']')
		if f.obj {
			end = '}'
		}
		switch c.in[c.pos] {
		case end:
			c.pos++
			c.close()
			continue
		case ',':
			c.pos++
			if f.obj {
				return false, c.key()
			}
			return false, nil
		}
		return false, c.errUnexpected()
	}
	c.ws()
	if c.pos != len(c.in) {
		return true, Invalid("body", "invalid JSON: data after the value at offset %d", c.pos)
	}
	return true, nil
}

// close finishes the innermost container. A count up to 15 fits the
// one-byte placeholder; a larger one needs a longer header, which
// insertHeaders puts in after the whole text is read, so each byte moves at
// most once however deeply large containers nest.
func (c *jsonConv) close() {
	f := c.frames[len(c.frames)-1]
	c.frames = c.frames[:len(c.frames)-1]
	if f.obj {
		c.keys = c.keys[:f.keys]
	}
	if f.n <= 15 {
		c.out[f.hdr] |= byte(f.n)
		return
	}
	c.long = append(c.long, longHeader{pos: f.hdr, n: f.n, obj: f.obj})
}

// longHeader is a container header that does not fit its placeholder.
type longHeader struct {
	pos int // the placeholder's offset in out
	n   int
	obj bool
}

// insertHeaders replaces the placeholders of c.long by their full headers,
// moving the data between them back to front in one pass.
func (c *jsonConv) insertHeaders() {
	if len(c.long) == 0 {
		return
	}
	// Containers close inner first; the pass needs them in text order.
	slices.SortFunc(c.long, func(a, b longHeader) int { return a.pos - b.pos })
	grow := 0
	for _, h := range c.long {
		grow += headerLen(h.n) - 1
	}
	end := len(c.out)
	c.out = slices.Grow(c.out, grow)[:end+grow]
	for i := len(c.long) - 1; i >= 0; i-- {
		h := c.long[i]
		// Data after this placeholder moves by the growth of the headers
		// before it and including it.
		copy(c.out[h.pos+1+grow:], c.out[h.pos+1:end])
		grow -= headerLen(h.n) - 1
		var b [5]byte
		hb := appendArrayHeader(b[:0], h.n)
		if h.obj {
			hb = appendMapHeader(b[:0], h.n)
		}
		copy(c.out[h.pos+grow:], hb)
		end = h.pos
	}
}

// headerLen is the length of the array or map header for n elements.
func headerLen(n int) int {
	switch {
	case n <= 15:
		return 1
	case n <= math.MaxUint16:
		return 3
	}
	return 5
}

// key reads an object key and the colon after it, checking for duplicates.
func (c *jsonConv) key() error {
	c.ws()
	if c.pos >= len(c.in) {
		return c.errEOF()
	}
	if c.in[c.pos] != '"' {
		return c.errUnexpected()
	}
	if err := c.str(); err != nil {
		return err
	}
	f := &c.frames[len(c.frames)-1]
	k := c.lastPayload()
	ks := c.out[k.start:k.end]
	if f.seen != nil {
		if _, dup := f.seen[string(ks)]; dup {
			return Invalid(c.path(string(ks)), "duplicate key")
		}
		f.seen[string(ks)] = struct{}{}
	} else {
		for _, o := range c.keys[f.keys:] {
			if string(c.out[o.start:o.end]) == string(ks) {
				return Invalid(c.path(string(ks)), "duplicate key")
			}
		}
		if len(c.keys)-f.keys >= smallObject {
			f.seen = make(map[string]struct{}, 2*smallObject)
			for _, o := range c.keys[f.keys:] {
				f.seen[string(c.out[o.start:o.end])] = struct{}{}
			}
			f.seen[string(ks)] = struct{}{}
		}
	}
	c.keys = append(c.keys, k)
	c.ws()
	if c.pos >= len(c.in) {
		return c.errEOF()
	}
	if c.in[c.pos] != ':' {
		return c.errUnexpected()
	}
	c.pos++
	return nil
}

// lastPayload returns the payload span of the str just written to out.
func (c *jsonConv) lastPayload() keySpan {
	return keySpan{start: c.strStart, end: len(c.out)}
}

func (c *jsonConv) lit(word string, b byte) error {
	if len(c.in)-c.pos < len(word) || string(c.in[c.pos:c.pos+len(word)]) != word {
		if len(c.in)-c.pos < len(word) && string(c.in[c.pos:]) == word[:len(c.in)-c.pos] {
			return c.errEOF()
		}
		return c.errUnexpected()
	}
	c.pos += len(word)
	c.out = append(c.out, b)
	return nil
}

func (c *jsonConv) num() error {
	start := c.pos
	isInt, err := c.scanNumber()
	if err != nil {
		return err
	}
	text := c.in[start:c.pos]
	neg := text[0] == '-'
	digits := text
	if neg {
		digits = text[1:]
	}
	// "-0" stays a float (-0), so it renders back as -0.
	if isInt && !(neg && len(digits) == 1 && digits[0] == '0') {
		if len(digits) <= 19 { // < 10^19: fits uint64
			var u uint64
			for _, d := range digits {
				u = u*10 + uint64(d-'0')
			}
			switch {
			case !neg:
				c.out = appendUint(c.out, u)
				return nil
			case u <= 1<<63:
				c.out = appendInt(c.out, int64(-u))
				return nil
			}
		} else if u, err := strconv.ParseUint(string(digits), 10, 64); err == nil && !neg {
			c.out = appendUint(c.out, u)
			return nil
		}
	}
	f, err := strconv.ParseFloat(string(text), 64)
	if err != nil {
		return Invalid(c.path(""), "number %s out of range", cutBytes(text, MaxQuoted))
	}
	c.out = appendFloat64(c.out, f)
	return nil
}

// scanNumber moves past a number per the JSON grammar and reports whether
// it is written as an integer (no fraction, no exponent).
func (c *jsonConv) scanNumber() (isInt bool, err error) {
	in := c.in
	if in[c.pos] == '-' {
		c.pos++
	}
	switch {
	case c.pos < len(in) && in[c.pos] == '0':
		c.pos++
	case !c.digits():
		return false, c.errUnexpected()
	}
	isInt = true
	if c.pos < len(in) && in[c.pos] == '.' {
		isInt = false
		c.pos++
		if !c.digits() {
			return false, c.errUnexpected()
		}
	}
	if c.pos < len(in) && (in[c.pos] == 'e' || in[c.pos] == 'E') {
		isInt = false
		c.pos++
		if c.pos < len(in) && (in[c.pos] == '+' || in[c.pos] == '-') {
			c.pos++
		}
		if !c.digits() {
			return false, c.errUnexpected()
		}
	}
	return isInt, nil
}

// digits moves past a run of decimal digits and reports whether there was one.
func (c *jsonConv) digits() bool {
	start := c.pos
	for c.pos < len(c.in) && c.in[c.pos] >= '0' && c.in[c.pos] <= '9' {
		c.pos++
	}
	return c.pos > start
}

// plainJSON marks the bytes a JSON string holds as themselves: printable
// ASCII other than the quote and the backslash.
var plainJSON = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str converts the string at c.pos (its opening quote) to a msgpack str.
func (c *jsonConv) str() error {
	in := c.in
	i := c.pos + 1
	for i < len(in) && plainJSON[in[i]] {
		i++
	}
	if i < len(in) && in[i] == '"' { // plain ASCII: copy as is
		c.out = appendStringHeader(c.out, i-c.pos-1)
		c.strStart = len(c.out)
		c.out = append(c.out, in[c.pos+1:i]...)
		c.pos = i + 1
		return nil
	}
	s := append(c.scratch[:0], in[c.pos+1:i]...)
	for {
		if i >= len(in) {
			c.pos = i
			return c.errEOF()
		}
		ch := in[i]
		switch {
		case ch == '"':
			c.scratch = s
			c.out = appendStringHeader(c.out, len(s))
			c.strStart = len(c.out)
			c.out = append(c.out, s...)
			c.pos = i + 1
			return nil
		case ch == '\\':
			var err error
			if s, i, err = c.escape(s, i); err != nil {
				return err
			}
		case ch < 0x20:
			c.pos = i
			return Invalid(c.path(""), "invalid JSON: control character 0x%02x in string at offset %d", ch, i)
		case ch < utf8.RuneSelf:
			s = append(s, ch)
			i++
		default:
			r, size := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && size == 1 {
				// Replacing it (as encoding/json does) would store something
				// else than the caller sent, silently.
				c.pos = i
				return Invalid(c.path(""), "invalid UTF-8 in a string at offset %d", i)
			}
			s = append(s, in[i:i+size]...)
			i += size
		}
	}
}

// escape decodes the escape sequence at in[i] (a backslash) onto s.
func (c *jsonConv) escape(s []byte, i int) ([]byte, int, error) {
	in := c.in
	if i+1 >= len(in) {
		c.pos = len(in)
		return s, i, c.errEOF()
	}
	switch e := in[i+1]; e {
	case '"', '\\', '/':
		return append(s, e), i + 2, nil
	case 'b':
		return append(s, '\b'), i + 2, nil
	case 'f':
		return append(s, '\f'), i + 2, nil
	case 'n':
		return append(s, '\n'), i + 2, nil
	case 'r':
		return append(s, '\r'), i + 2, nil
	case 't':
		return append(s, '\t'), i + 2, nil
	case 'u':
		r, ok := hex4(in, i+2)
		if !ok {
			c.pos = i
			if i+6 > len(in) {
				return s, i, c.errEOF()
			}
			return s, i, Invalid(c.path(""), "invalid JSON: bad \\u escape at offset %d", i)
		}
		i += 6
		if utf16IsSurrogate(r) {
			r2 := rune(-1)
			if i+1 < len(in) && in[i] == '\\' && in[i+1] == 'u' {
				r2, _ = hex4(in, i+2)
			}
			if dec := utf16Decode(r, r2); dec != utf8.RuneError {
				return utf8.AppendRune(s, dec), i + 6, nil
			}
			// A lone surrogate has no UTF-8 form (I-JSON, RFC 7493, forbids
			// it); U+FFFD in its place would change the caller's data.
			c.pos = i - 6
			return s, i, Invalid(c.path(""), "invalid JSON: lone surrogate \\u%04x at offset %d", r, i-6)
		}
		return utf8.AppendRune(s, r), i, nil
	}
	c.pos = i
	return s, i, Invalid(c.path(""), "invalid JSON: bad escape at offset %d", i)
}

func hex4(in []byte, i int) (rune, bool) {
	if i+4 > len(in) {
		return 0, false
	}
	var r rune
	for _, ch := range in[i : i+4] {
		switch {
		case ch >= '0' && ch <= '9':
			ch -= '0'
		case ch >= 'a' && ch <= 'f':
			ch = ch - 'a' + 10
		case ch >= 'A' && ch <= 'F':
			ch = ch - 'A' + 10
		default:
			return 0, false
		}
		r = r<<4 | rune(ch)
	}
	return r, true
}

func utf16IsSurrogate(r rune) bool { return r >= 0xd800 && r < 0xe000 }

// utf16Decode combines a surrogate pair, or returns U+FFFD.
func utf16Decode(hi, lo rune) rune {
	if hi >= 0xd800 && hi < 0xdc00 && lo >= 0xdc00 && lo < 0xe000 {
		return (hi-0xd800)<<10 | (lo - 0xdc00) + 0x10000
	}
	return utf8.RuneError
}

func (c *jsonConv) errEOF() error {
	return Invalid(c.path(""), "invalid JSON: unexpected end of input")
}

func (c *jsonConv) errUnexpected() error {
	if c.pos >= len(c.in) {
		return c.errEOF()
	}
	return Invalid(c.path(""), "invalid JSON: unexpected %q at offset %d", c.in[c.pos], c.pos)
}

// path renders the JSON path of the current position, plus key when a key
// is being added, keeping at most c.pathFrames segments.
func (c *jsonConv) path(key string) string {
	var b []byte
	segs := 0
	seg := func(obj bool, k []byte, idx int) {
		segs++
		if segs > c.pathFrames {
			return
		}
		if !obj {
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(idx), 10)
			b = append(b, ']')
			return
		}
		if len(b) > 0 {
			b = append(b, '.')
		}
		b = append(b, cutBytes(k, MaxQuoted)...)
	}
	for i, f := range c.frames {
		if !f.obj {
			seg(false, nil, f.n)
			continue
		}
		// This object's keys run up to the first key of the next object
		// frame inside it.
		end := len(c.keys)
		for _, g := range c.frames[i+1:] {
			if g.obj {
				end = g.keys
				break
			}
		}
		if end > f.keys && end-f.keys > f.n { // a key whose value is pending
			k := c.keys[end-1]
			seg(true, c.out[k.start:k.end], 0)
		}
	}
	if key != "" {
		seg(true, []byte(key), 0)
	}
	if len(b) == 0 {
		return "body"
	}
	return string(b)
}
