package traces

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Storage format of trace, layer and unmatched-request objects: a msgpack
// document (codec.go), gzip-compressed and stored with Content-Encoding:
// gzip so GCS can transcode it for readers that want plain msgpack. The
// metadata names the format version and the SHA-256 of the uncompressed
// document, which lets a retried write recognise its own earlier upload
// from the attributes alone.
const (
	FormatVersion = "1"
	metaFormat    = "tracegw-format"
	metaSHA256    = "tracegw-sha256"
	metaBase      = "tracegw-base-generation" // a layer's baseGeneration, also in its document
	storedType    = "application/msgpack"
	gzipEncoding  = "gzip"
)

// Stored is a document ready to be written as an object.
type Stored struct {
	Body []byte // gzip of the document
	Hash string // hex SHA-256 of the document
}

// Store compresses doc and hashes it, in one pass over the document.
func Store(doc []byte) (Stored, error) {
	body, sum, err := compress(doc)
	if err != nil {
		return Stored{}, fmt.Errorf("compress: %w", err)
	}
	return Stored{Body: body, Hash: hex.EncodeToString(sum)}, nil
}

// StoreCompressed is Store for a document that arrived compressed: gz is
// its gzip form, as Inflate read it (one member, nothing after it), so it
// is stored as it is, and only doc is hashed. The storage format is any
// gzip of the document; the hash, which retries compare, is of the
// document alone.
func StoreCompressed(doc, gz []byte) Stored {
	sum := sha256.Sum256(doc)
	return Stored{Body: gz, Hash: hex.EncodeToString(sum[:])}
}

// Object is what to write with s: its content type and encoding, the format
// metadata and customTime (which starts its retention).
func (s Stored) Object(customTime time.Time) NewObject {
	return NewObject{
		ContentType: storedType, ContentEncoding: gzipEncoding, CustomTime: customTime,
		Metadata: map[string]string{metaFormat: FormatVersion, metaSHA256: s.Hash},
	}
}

// LayerObject is Object for a layer added to generation base of its trace:
// the metadata names base too, so whose layer it is can be told from the
// attributes alone (LayerBase).
func (s Stored) LayerObject(customTime time.Time, base int64) NewObject {
	o := s.Object(customTime)
	o.Metadata[metaBase] = strconv.FormatInt(base, 10)
	return o
}

// LayerBase returns the trace generation a layer object was added to, as
// its metadata names it; ok is false for a layer written before the
// metadata did (its document still names it: DecodeStoredLayer).
func LayerBase(info ObjectInfo) (base int64, ok bool) {
	base, err := strconv.ParseInt(info.Metadata[metaBase], 10, 64)
	return base, err == nil
}

// Holds reports whether the object info describes is s: same document hash.
func (s Stored) Holds(info ObjectInfo) bool { return info.Metadata[metaSHA256] == s.Hash }

// IsStoredFormat reports whether info describes an object written in this
// storage format: its content type and encoding and format version.
func IsStoredFormat(info ObjectInfo) bool {
	return info.ContentType == storedType && info.ContentEncoding == gzipEncoding && info.Metadata[metaFormat] == FormatVersion
}

// DocumentHash is the hex SHA-256 of doc, as Stored.Hash holds it.
func DocumentHash(doc []byte) string {
	sum := sha256.Sum256(doc)
	return hex.EncodeToString(sum[:])
}

// UnstoreLimit is Unstore for an object that may come from a client: a
// gzip object must be one member inflating to at most limit bytes
// (Inflate's errors, naming field), an uncompressed one (transcoded on the
// way) at most limit bytes.
func UnstoreLimit(raw []byte, limit int64, field string) ([]byte, error) {
	if len(raw) < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
		if int64(len(raw)) > limit {
			return nil, TooLarge(field, limit)
		}
		return raw, nil
	}
	return Inflate(raw, limit, field, func(int64) error { return nil })
}

// Unstore undoes the storage format's compression. GCS transcodes gzip
// objects unless the reader accepts gzip, so it looks at the bytes: a
// msgpack document never starts with gzip's magic.
func Unstore(raw []byte) ([]byte, error) {
	if len(raw) < 2 || raw[0] != 0x1f || raw[1] != 0x8b {
		return raw, nil
	}
	doc, err := decompress(raw)
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	return doc, nil
}

// DecodeStoredTrace reads a trace object's bytes.
func DecodeStoredTrace(raw []byte, lim Limits) (*Trace, error) {
	doc, err := Unstore(raw)
	if err != nil {
		return nil, err
	}
	lim.MaxBody, lim.stored, lim.SkipUnknown = int64(len(doc)), true, true // our own object: a later version may add keys
	return DecodeTrace(doc, false, lim)
}

// DecodeStoredUnmatched reads an unmatched request object's bytes.
func DecodeStoredUnmatched(raw []byte, lim Limits) (Unmatched, error) {
	doc, err := Unstore(raw)
	if err != nil {
		return Unmatched{}, err
	}
	lim.MaxBody, lim.stored, lim.SkipUnknown = int64(len(doc)), true, true // our own object: a later version may add keys
	return DecodeUnmatched(doc, false, lim)
}

// Layer objects hold the layer document of AppendLayerMsgpack plus one key,
// baseGeneration: the generation of the trace object the layer was added
// to. A replace resets the layer count and deletes the old layer objects
// only after its index commit, so for a moment old and new layers share
// numbers; reads skip a layer whose baseGeneration is not the generation of
// the trace object they read, so a layer never applies to a trace it was
// not computed for.
const mpBaseGeneration = "\xaebaseGeneration"

// AppendStoredLayer appends a layer object's document: AppendLayerMsgpack's
// map with baseGeneration as a third key (DecodeLayer skips it under
// Limits.SkipUnknown).
func AppendStoredLayer(dst []byte, base int64, tlids []TLID, results []FunctionResult) []byte {
	at := len(dst)
	dst = AppendLayerMsgpack(slices.Grow(dst, 64+tlidsSize(tlids)+resultsSize(results)+len(mpBaseGeneration)+9), tlids, results)
	dst[at] = 0x83 // fixmap of 3: AppendLayerMsgpack wrote 0x82
	dst = append(dst, mpBaseGeneration...)
	return appendInt(dst, base)
}

// DecodeStoredLayer reads a layer object's bytes: the layer and the
// generation of the trace object it was added to.
func DecodeStoredLayer(raw []byte, lim Limits) (Layer, int64, error) {
	doc, err := Unstore(raw)
	if err != nil {
		return Layer{}, 0, err
	}
	lim.MaxBody, lim.stored, lim.SkipUnknown = int64(len(doc)), true, true // baseGeneration, and keys a later version adds
	tlids, results, err := DecodeLayer(doc, false, lim)
	if err != nil {
		return Layer{}, 0, err
	}
	var base int64
	err = DecodeFields(doc, false, lim, map[string]func(*Reader, string) error{
		"baseGeneration": func(r *Reader, f string) (err error) {
			base, err = r.Int(f)
			return err
		},
	})
	if err != nil {
		return Layer{}, 0, err
	}
	return Layer{TLIDs: tlids, FunctionResults: results}, base, nil
}

// Touched is every tlid a trace names: its root, its tlids and the tlid of
// each function result, sorted order not guaranteed, each once. The index
// lists and keeps the trace for each of them.
func Touched(t *Trace) []TLID {
	all := make([]TLID, 0, 1+len(t.TLIDs)+len(t.FunctionResults))
	all = append(all, t.RootTLID)
	all = append(all, t.TLIDs...)
	for _, fr := range t.FunctionResults {
		all = append(all, fr.TLID)
	}
	return dedupeTLIDs(all)
}

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

// hashChunk is how much of a document compress hashes and then
// compresses at a time: the chunk is still in the CPU's cache when the
// compressor reads it.
const hashChunk = 32 << 10

// compress returns the gzip of doc and doc's SHA-256, hashing and
// compressing chunk by chunk.
func compress(doc []byte) ([]byte, []byte, error) {
	var buf bytes.Buffer
	// Sized for the worst case, an incompressible document (stored blocks
	// add 5 bytes per 64 KiB, gzip 18 in all), so the buffer is allocated
	// once rather than regrown with its copies.
	buf.Grow(len(doc) + len(doc)>>12 + 64)
	w := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(w)
	w.Reset(&buf)
	h := sha256.New()
	for rest := doc; len(rest) > 0; {
		n := min(len(rest), hashChunk)
		h.Write(rest[:n])
		if _, err := w.Write(rest[:n]); err != nil {
			return nil, nil, err
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		return nil, nil, err
	}
	out := buf.Bytes()
	if cap(out)-len(out) > len(out)/4+4<<10 {
		// It compressed well: keep an exact copy for the upload and let
		// the large buffer go now.
		out = bytes.Clone(out)
	}
	return out, h.Sum(nil), nil
}

var gzipReaders sync.Pool // *gzip.Reader

// Inflate decompresses a request body sent with Content-Encoding: gzip:
// exactly one gzip member (checksum and length checked) and nothing after
// it. reserve is called before the output buffer grows, with the bytes it
// adds (the caller's memory budget); its error is returned as is. A
// document over limit bytes is TooLarge naming field; a body that is not
// such a stream is Invalid naming field.
func Inflate(gz []byte, limit int64, field string, reserve func(n int64) error) ([]byte, error) {
	src := bytes.NewReader(gz)
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(src)
	} else {
		err = zr.Reset(src)
	}
	if err != nil {
		return nil, Invalid(field, "is not gzip: %v", err)
	}
	defer gzipReaders.Put(zr)
	zr.Multistream(false)
	// The gzip trailer's ISIZE is the document's length (mod 2^32): the
	// buffer is sized for it plus one byte, so it is allocated once. It is
	// the sender's word, so it is believed only up to 64 times the
	// compressed size (past that the buffer grows by doubling), and never
	// past limit+1 (one byte more tells it is over).
	var out []byte
	grow := func(to int64) error {
		to = min(to, limit+1)
		if err := reserve(to - int64(cap(out))); err != nil {
			return err
		}
		out = append(make([]byte, 0, to), out...)
		return nil
	}
	hint := 4 * int64(len(gz))
	if n := len(gz); n >= 18 {
		hint = int64(binary.LittleEndian.Uint32(gz[n-4:])) + 1
	}
	if err := grow(max(min(hint, 64*int64(len(gz))), 4<<10)); err != nil {
		return nil, err
	}
	for {
		if len(out) == cap(out) {
			if int64(len(out)) > limit {
				return nil, TooLarge(field, limit)
			}
			if err := grow(2 * int64(cap(out))); err != nil {
				return nil, err
			}
		}
		n, err := zr.Read(out[len(out):cap(out)])
		out = out[:len(out)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, Invalid(field, "is not a valid gzip stream: %v", err)
		}
	}
	if int64(len(out)) > limit {
		return nil, TooLarge(field, limit)
	}
	if src.Len() > 0 {
		return nil, Invalid(field, "has %d bytes after its gzip stream (send one gzip member)", src.Len())
	}
	return out, nil
}

func decompress(b []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}
