package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tracegw/tracegw/internal/traces"
)

// gz compresses b at level (any level: the stored form is any gzip).
func gz(t *testing.T, b []byte, level int) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := gzip.NewWriterLevel(&buf, level)
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// canonicalDoc is the document the gateway stores for a trace with this
// ID, root and body: what the Go client sends.
func canonicalDoc(id traces.TraceID, root traces.TLID, body string) []byte {
	v, _ := msgpack.Marshal(body)
	return traces.AppendTraceMsgpack(nil, &traces.Trace{ID: id, RootTLID: root, TLIDs: []traces.TLID{root},
		Timestamp: id.Time(), Input: []traces.InputVar{{Name: "request", Value: v}}})
}

// countObjects counts the objects in the gateway's bucket.
func countObjects(t *testing.T, g *gateway) int {
	t.Helper()
	n := 0
	for _, err := range g.GCS.Objects(t.Context(), "") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	return n
}

// A gzip-compressed body is inflated and decoded as any other; when it is
// the canonical document its gzip is stored as it came, and the stored
// document, its hash and so the retry answers are those of an
// uncompressed save of the same trace.
func TestSaveCompressed(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	url := tracesURL(g, canvas)
	c, _ := traces.ParseCanvasID(canvas)
	id := traces.NewTraceID(time.Now())
	doc := canonicalDoc(id, 7, strings.Repeat("payload ", 500))
	body := gz(t, doc, gzip.BestCompression) // not what the gateway's compressor writes
	status, _, b := call(t, "POST", url, "application/msgpack", body, "Content-Encoding", "gzip")
	if status != http.StatusCreated {
		t.Fatalf("compressed save: %d %s", status, b)
	}
	info, err := g.GCS.Stat(t.Context(), traces.TraceKey(c, id))
	if err != nil {
		t.Fatal(err)
	}
	if info.Size != int64(len(body)) || info.ContentEncoding != "gzip" {
		t.Errorf("stored %d bytes (encoding %q), not the %d gzip bytes the client sent", info.Size, info.ContentEncoding, len(body))
	}
	// The same trace again, uncompressed: the same document, so a retry.
	if status, _, b := call(t, "POST", url, "application/msgpack", doc); status != http.StatusOK {
		t.Errorf("uncompressed retry: %d %s, want 200", status, b)
	}
	// A different document under the same ID, compressed: a conflict.
	other := canonicalDoc(id, 7, "something else")
	if status, _, b := call(t, "POST", url, "application/msgpack", gz(t, other, 1), "Content-Encoding", "gzip"); status != http.StatusConflict {
		t.Errorf("different compressed document: %d %s, want 409", status, b)
	}

	// Not canonical (no timestamp, root missing from tlids): decoded,
	// prepared, encoded and compressed as an uncompressed save would be.
	id2 := traces.NewTraceID(time.Now())
	loose := traces.AppendTraceMsgpack(nil, &traces.Trace{ID: id2, RootTLID: 9, Input: []traces.InputVar{{Name: "x", Value: []byte{0x01}}}})
	looseGz := gz(t, loose, 1)
	if status, _, b := call(t, "POST", url, "application/msgpack", looseGz, "Content-Encoding", "gzip"); status != http.StatusCreated {
		t.Fatalf("non-canonical compressed save: %d %s", status, b)
	}
	raw, _, err := g.GCS.Open(t.Context(), traces.TraceKey(c, id2))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := traces.Unstore(raw)
	if err != nil {
		t.Fatal(err)
	}
	info2, err := g.GCS.Stat(t.Context(), traces.TraceKey(c, id2))
	if err != nil {
		t.Fatal(err)
	}
	want := traces.AppendTraceMsgpack(nil, &traces.Trace{ID: id2, RootTLID: 9, TLIDs: []traces.TLID{9}, Timestamp: id2.Time(),
		Input: []traces.InputVar{{Name: "x", Value: []byte{0x01}}}})
	if info2.Size == int64(len(looseGz)) || !bytes.Equal(stored, want) {
		t.Errorf("non-canonical body stored as sent, or not as the canonical document")
	}
	// JSON may be compressed too.
	if status, _, b := call(t, "POST", url, "application/json", gz(t, []byte(`{"rootTLID":"3"}`), 1), "Content-Encoding", "gzip"); status != http.StatusCreated {
		t.Errorf("compressed JSON: %d %s", status, b)
	}
}

// Compressed bodies that are not one clean gzip member, inflate past the
// body limit, or use another encoding are refused before anything is
// stored.
func TestSaveCompressedRefused(t *testing.T) {
	t.Parallel()
	g := newGateway(t) // MaxBody 1 MiB
	url := tracesURL(g, canvas)
	doc := canonicalDoc(traces.NewTraceID(time.Now()), 7, "x")
	bomb := canonicalDoc(traces.NewTraceID(time.Now()), 7, strings.Repeat("a", 2<<20))
	for _, tc := range []struct {
		name, encoding string
		body           []byte
		status         int
		field          string
	}{
		{"not gzip", "gzip", doc, http.StatusBadRequest, "body"},
		{"truncated", "gzip", gz(t, doc, 1)[:20], http.StatusBadRequest, "body"},
		{"trailing bytes", "gzip", append(gz(t, doc, 1), 0, 1, 2), http.StatusBadRequest, "body"},
		{"two members", "gzip", append(gz(t, doc, 1), gz(t, doc, 1)...), http.StatusBadRequest, "body"},
		{"inflates past the limit", "gzip", gz(t, bomb, 9), http.StatusRequestEntityTooLarge, "body"},
		{"another encoding", "br", doc, http.StatusUnsupportedMediaType, ""},
	} {
		status, _, b := call(t, "POST", url, "application/msgpack", tc.body, "Content-Encoding", tc.encoding)
		if status != tc.status {
			t.Errorf("%s: status %d, want %d (%s)", tc.name, status, tc.status, b)
			continue
		}
		if _, field := errorOf(t, b); tc.field != "" && field != tc.field {
			t.Errorf("%s: field %q, want %q", tc.name, field, tc.field)
		}
	}
	if n := countObjects(t, g); n != 0 {
		t.Errorf("%d objects stored by refused saves", n)
	}
}
