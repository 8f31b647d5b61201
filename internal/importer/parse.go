package importer

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/internal/traces"
)

// docFrames is the nesting the trace document adds around its values; the
// gateway allows the same before it checks each value's own depth.
const docFrames = 3

// ParseLine decodes one input line: a JSON object in the API's JSON form of
// a trace (api/openapi.yaml's Trace) plus "canvasID". It applies the rules
// the gateway applies to a JSON body (the same decoder, the same limits), and
// requires the traceID, which an import keeps. Errors are *traces.FieldError
// values naming the field (over a limit: the field and the limit).
func ParseLine(line []byte, lim traces.Limits) (client.CanvasID, *client.Trace, error) {
	lim = lim.OrDefault()
	if int64(len(line)) > lim.MaxBody {
		return "", nil, traces.TooLarge("body", lim.MaxBody)
	}
	mp, err := traces.JSONToMsgpack(make([]byte, 0, len(line)), line, traces.Limits{MaxDepth: lim.MaxDepth + docFrames})
	if err != nil {
		return "", nil, err
	}
	canvas, doc, err := splitCanvas(mp)
	if err != nil {
		return "", nil, err
	}
	t, err := traces.DecodeTrace(doc, false, lim)
	if err != nil {
		return "", nil, err
	}
	if t.ID.IsZero() {
		return "", nil, traces.Invalid("traceID", "required: an import keeps each trace's ID")
	}
	return client.CanvasID(canvas.String()), clientTrace(t), nil
}

// splitCanvas takes the "canvasID" key out of the top-level map of a msgpack
// document: the canvas and the document without it.
func splitCanvas(mp []byte) (traces.CanvasID, []byte, error) {
	d := msgpack.NewDecoder(bytes.NewReader(mp))
	n, err := d.DecodeMapLen()
	if err != nil || n < 0 {
		return traces.CanvasID{}, nil, traces.Invalid("body", "must be a JSON object")
	}
	var (
		out    bytes.Buffer
		canvas *traces.CanvasID
	)
	e := msgpack.NewEncoder(&out)
	_ = e.EncodeMapLen(max(n-1, 0)) // rewritten below if canvasID is missing
	for range n {
		k, err := d.DecodeString()
		if err != nil {
			return traces.CanvasID{}, nil, traces.Invalid("body", "has a key that is not a string")
		}
		if k != "canvasID" {
			raw, err := d.DecodeRaw()
			if err != nil {
				return traces.CanvasID{}, nil, traces.Invalid(k, "is malformed")
			}
			_ = e.EncodeString(k)
			out.Write(raw)
			continue
		}
		if canvas != nil {
			return traces.CanvasID{}, nil, traces.Invalid("canvasID", "duplicate key")
		}
		s, err := d.DecodeString()
		if err != nil {
			return traces.CanvasID{}, nil, traces.Invalid("canvasID", "must be a string: a canvas UUID")
		}
		c, err := traces.ParseCanvasID(s)
		if err != nil {
			return traces.CanvasID{}, nil, err
		}
		canvas = &c
	}
	if canvas == nil {
		return traces.CanvasID{}, nil, traces.Invalid("canvasID", "required: the canvas each trace belongs to")
	}
	return *canvas, out.Bytes(), nil
}

// clientTrace is t as the Go client sends it (values stay their msgpack
// bytes).
func clientTrace(t *traces.Trace) *client.Trace {
	ct := &client.Trace{ID: client.TraceID(t.ID.String()), RootTLID: client.TLID(t.RootTLID), Timestamp: t.Timestamp}
	for _, id := range t.TLIDs {
		ct.TLIDs = append(ct.TLIDs, client.TLID(id))
	}
	for _, v := range t.Input {
		ct.Input = append(ct.Input, client.InputVar{Name: v.Name, Value: client.Value(v.Value)})
	}
	for _, r := range t.FunctionResults {
		ct.FunctionResults = append(ct.FunctionResults, client.FunctionResult{TLID: client.TLID(r.TLID), ExprID: r.ExprID,
			FnName: r.FnName, HashVersion: r.HashVersion, ArgHash: r.ArgHash, Value: client.Value(r.Value)})
	}
	return ct
}

// lineReader reads lines of at most max bytes; a longer line is reported
// (tooLong) and skipped whole. It counts the bytes it consumed.
type lineReader struct {
	br     *bufio.Reader
	max    int
	offset int64 // bytes consumed so far
	buf    []byte
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{br: bufio.NewReaderSize(r, 1<<16), max: max}
}

// next returns the next line without its newline ("\r\n" too). At the end
// of the input it returns io.EOF; a last line without a newline is a line.
func (l *lineReader) next() (line []byte, tooLong bool, err error) {
	l.buf = l.buf[:0]
	for {
		chunk, err := l.br.ReadSlice('\n')
		l.offset += int64(len(chunk))
		if !tooLong {
			if len(l.buf)+len(chunk) > l.max+2 { // +2: the line ending
				tooLong, l.buf = true, l.buf[:0]
			} else {
				l.buf = append(l.buf, chunk...)
			}
		}
		switch {
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case err == io.EOF && len(l.buf) == 0 && !tooLong:
			return nil, false, io.EOF
		case err != nil && err != io.EOF:
			return nil, false, fmt.Errorf("read input: %w", err)
		}
		if tooLong {
			return nil, true, nil
		}
		b := bytes.TrimSuffix(l.buf, []byte("\n"))
		return bytes.TrimSuffix(b, []byte("\r")), false, nil
	}
}
