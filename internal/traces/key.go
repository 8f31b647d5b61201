package traces

import (
	"fmt"
	"strconv"
	"strings"
)

// Object layout in the bucket (the bucket is dedicated to tracegw):
//
//	{canvasID}/traces/{traceID}           the trace
//	{canvasID}/layers/{traceID}/{NNNNNN}  layer NNNNNN of its function results
//	{canvasID}/404s/{traceID}             an unmatched request
//
// canvasID first spreads load over GCS's key range; time-ordered IDs come
// after it so no hot range forms. Layers live beside their trace rather than
// under its name: no object name is then a directory prefix of another,
// which filesystem-backed stores (the emulator's) cannot represent.

// TraceKey is the object name of a trace.
func TraceKey(c CanvasID, id TraceID) string {
	return c.String() + "/traces/" + id.String()
}

// LayerPrefix is the name prefix under which a trace's layers live.
func LayerPrefix(c CanvasID, id TraceID) string {
	return c.String() + "/layers/" + id.String() + "/"
}

// LayerKey is the object name of layer n (1-based) of a trace. Fixed-width
// numbers keep listing order equal to layer order.
func LayerKey(c CanvasID, id TraceID, n int) string {
	return fmt.Sprintf("%s%06d", LayerPrefix(c, id), n)
}

// UnmatchedKey is the object name of an unmatched request ("404").
func UnmatchedKey(c CanvasID, id TraceID) string {
	return c.String() + "/404s/" + id.String()
}

// CanvasPrefix is the prefix of everything a canvas owns.
func CanvasPrefix(c CanvasID) string { return c.String() + "/" }

// KeyKind says what an object name denotes.
type KeyKind int

// The kinds of object names ParseKey recognises.
const (
	KindUnknown KeyKind = iota
	KindTrace
	KindLayer
	KindUnmatched
)

// Key is a parsed object name.
type Key struct {
	Kind   KeyKind
	Canvas CanvasID
	Trace  TraceID
	Layer  int // layer number for KindLayer
}

// ParseKey parses an object name of the layout above. Names that do not
// follow it return ErrInvalid (wrapped), so a notification about a foreign
// object can be recognised and ignored.
func ParseKey(name string) (Key, error) {
	c, rest, ok := strings.Cut(name, "/")
	if !ok {
		return Key{}, Invalid("key", "not a tracegw object name")
	}
	canvas, err := ParseCanvasID(c)
	if err != nil {
		return Key{}, err
	}
	kind, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return Key{}, Invalid("key", "not a tracegw object name")
	}
	switch kind {
	case "404s":
		id, err := ParseTraceID(rest)
		if err != nil {
			return Key{}, err
		}
		return Key{Kind: KindUnmatched, Canvas: canvas, Trace: id}, nil
	case "traces":
		id, err := ParseTraceID(rest)
		if err != nil {
			return Key{}, err
		}
		return Key{Kind: KindTrace, Canvas: canvas, Trace: id}, nil
	case "layers":
		t, layer, ok := strings.Cut(rest, "/")
		if !ok {
			return Key{}, Invalid("key", "not a tracegw object name")
		}
		id, err := ParseTraceID(t)
		if err != nil {
			return Key{}, err
		}
		n, err := strconv.ParseUint(layer, 10, 32) // digits only: no sign, so one name per layer
		if err != nil || n < 1 || len(layer) != 6 {
			return Key{}, Invalid("key", "bad layer number")
		}
		return Key{Kind: KindLayer, Canvas: canvas, Trace: id, Layer: int(n)}, nil
	}
	return Key{}, Invalid("key", "not a tracegw object name")
}
