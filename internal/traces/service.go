package traces

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"
)

// Storage format of a trace object: the msgpack document of codec.go,
// gzip-compressed and stored with Content-Encoding: gzip so GCS can transcode
// it for readers that want plain msgpack. The metadata names the format
// version and the SHA-256 of the uncompressed document, which lets a retried
// save recognise its own earlier upload from the attributes alone.
const (
	FormatVersion = "1"
	metaFormat    = "tracegw-format"
	metaSHA256    = "tracegw-sha256"
	contentType   = "application/msgpack"
	gzipEncoding  = "gzip"
)

// maxClockSkew is how far a caller-supplied ID's embedded time may be from
// the trace's timestamp (API.md).
const maxClockSkew = 24 * time.Hour

// objects is what the Service needs from Cloud Storage.
type objects interface {
	// Create writes a new object only if the key is absent; an existing one
	// wraps ErrPreconditionFailed.
	Create(ctx context.Context, key string, body []byte, o NewObject) (ObjectInfo, error)
	// Open returns the stored bytes (not transcoded) and attributes.
	Open(ctx context.Context, key string) ([]byte, ObjectInfo, error)
	// Stat returns the attributes; absent wraps ErrNotFound.
	Stat(ctx context.Context, key string) (ObjectInfo, error)
	replaceObjects // replace.go
	layerObjects   // layers.go
}

// index is what the Service needs from the PostgreSQL index.
type index interface {
	PutTrace(ctx context.Context, r Record) (bool, error)
	Get(ctx context.Context, c CanvasID, id TraceID) (Record, error)
	Find(ctx context.Context, id TraceID) (Record, error)
	Recent(ctx context.Context, c CanvasID, tlid TLID, limit int) ([]Summary, error)
	RecentMany(ctx context.Context, c CanvasID, tlids []TLID, limit int) (map[TLID][]Summary, error)
	Remove(ctx context.Context, c CanvasID, id TraceID, maxGeneration int64) (bool, error)
	replaceIndex   // replace.go
	layerIndex     // layers.go
	unmatchedIndex // unmatched.go
	toplevelIndex  // canvas.go
}

// Service saves, reads and lists traces. It is safe for concurrent use.
type Service struct {
	objects objects
	index   index
	now     func() time.Time
	log     *slog.Logger
	// Limits bound decoding of stored layers and list sizes.
	Limits Limits
	// Retention is how long unmatched requests are listed after they
	// arrive (API.md: the retention period; default 7 days). It should equal
	// the bucket lifecycle rule's age, which deletes their objects.
	Retention time.Duration
}

// DefaultRetention is API.md's default retention period.
const DefaultRetention = 7 * 24 * time.Hour

// NewService wires the service; now is the clock (shared with the emulator
// in `tracegw dev`), log may be nil.
func NewService(o objects, ix index, now func() time.Time, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{objects: o, index: ix, now: now, log: log, Limits: DefaultLimits, Retention: DefaultRetention}
}

// Saved is the outcome of Save.
type Saved struct {
	ID         TraceID
	Generation int64
	Created    bool // false: an identical trace was already stored (a retry)
}

// MaxListLimit bounds the limit of a list (API.md: default 10, max 100).
const (
	DefaultListLimit = 10
	MaxListLimit     = 100
	MaxBatchTLIDs    = 1000
)

// Prepare fills a trace's ID and timestamp as Save would and checks that a
// caller-supplied ID agrees with the timestamp and that neither is more than
// a day ahead of now. It errors with a *FieldError.
func Prepare(t *Trace, now time.Time) error {
	fromID := false // the timestamp comes from a caller's ID
	switch {
	case t.ID.IsZero() && t.Timestamp.IsZero():
		t.Timestamp = now
		t.ID = NewTraceID(now)
	case t.ID.IsZero():
		t.ID = NewTraceID(t.Timestamp)
	case t.Timestamp.IsZero():
		// A retry without a timestamp must produce the same document, so the
		// default comes from the ID, not from the clock.
		t.Timestamp, fromID = t.ID.Time(), true
	default:
		if d := t.ID.Time().Sub(t.Timestamp); d > maxClockSkew || d < -maxClockSkew {
			return Invalid("traceID", "embedded time %s is more than a day away from timestamp %s",
				t.ID.Time().Format(time.RFC3339), t.Timestamp.UTC().Format(time.RFC3339))
		}
	}
	// A trace from the future would top every list it is in, and be kept,
	// for as long as its clock is ahead.
	if limit := now.Add(maxClockSkew); t.Timestamp.After(limit) || t.ID.Time().After(limit) {
		if fromID {
			return Invalid("traceID", "embedded time %s is more than a day in the future", t.ID.Time().Format(time.RFC3339))
		}
		return Invalid("timestamp", "%s is more than a day in the future", t.Timestamp.UTC().Format(time.RFC3339))
	}
	t.Timestamp = t.Timestamp.UTC().Truncate(time.Millisecond)
	t.TLIDs = withRoot(t.RootTLID, t.TLIDs)
	return nil
}

func withRoot(root TLID, tlids []TLID) []TLID {
	for _, t := range tlids {
		if t == root {
			return tlids
		}
	}
	return append([]TLID{root}, tlids...)
}

// Save stores a new trace: the object first (create-only, customTime = now),
// then its index rows in one round trip. A crash between the two leaves an
// orphan object that the bucket expires; a retry of the same document finds
// the object, recognises it by its hash and writes the index rows (Created
// false). A different document under the same ID wraps ErrConflict.
// Backend faults wrap ErrUnavailable.
func (s *Service) Save(ctx context.Context, c CanvasID, t *Trace) (Saved, error) {
	now := s.now()
	if err := Prepare(t, now); err != nil {
		return Saved{}, err
	}
	doc := AppendTraceMsgpack(make([]byte, 0, 1024), t)
	sum := sha256.Sum256(doc)
	hash := hex.EncodeToString(sum[:])
	body, err := compress(doc)
	if err != nil {
		return Saved{}, fmt.Errorf("compress trace: %w", err)
	}
	key := TraceKey(c, t.ID)
	ct := now.UTC().Truncate(time.Second) // what the client sends as customTime
	obj := NewObject{
		ContentType: contentType, ContentEncoding: gzipEncoding, CustomTime: ct,
		Metadata: map[string]string{metaFormat: FormatVersion, metaSHA256: hash},
	}
	created := true
	info, err := s.objects.Create(ctx, key, body, obj)
	for range 2 {
		if !errors.Is(err, ErrPreconditionFailed) {
			break
		}
		created = false
		info, err = s.objects.Stat(ctx, key)
		if errors.Is(err, ErrNotFound) {
			// Deleted between our create and our look (the bucket expired an
			// orphan of an earlier attempt): create it afresh.
			created = true
			info, err = s.objects.Create(ctx, key, body, obj)
			continue
		}
		if err == nil && info.Metadata[metaSHA256] != hash {
			return Saved{}, fmt.Errorf("save %s: a different trace with this traceID exists: %w", key, ErrConflict)
		}
		if err == nil {
			ct = info.CustomTime
		}
	}
	if err != nil {
		return Saved{}, fmt.Errorf("save %s: %w", key, err)
	}
	_, err = s.index.PutTrace(ctx, Record{
		Canvas: c, ID: t.ID, RootTLID: t.RootTLID, TLIDs: t.TLIDs, Timestamp: t.Timestamp,
		Generation: info.Generation, CustomTime: ct,
	})
	if err != nil {
		return Saved{}, fmt.Errorf("index %s: %w", key, err)
	}
	return Saved{ID: t.ID, Generation: info.Generation, Created: created}, nil
}

// Read is a trace with all its layers merged, and the generation of its object.
type Read struct {
	Trace      *Trace
	Generation int64
	Record     Record
}

// Get reads a trace and merges its layers 1..Record.Layers in order (the
// later layer winning per (tlid, exprID, fnName, argHash); a layer object
// that is gone, or that was added to an earlier generation of a replaced
// trace, is skipped). A trace unknown to the index, or whose object is
// gone, wraps ErrNotFound; in the latter case its stale index rows are
// removed first (lost notifications heal on read).
func (s *Service) Get(ctx context.Context, c CanvasID, id TraceID) (Read, error) {
	rec, err := s.index.Get(ctx, c, id)
	if err != nil {
		return Read{}, fmt.Errorf("get %s: %w", id, err)
	}
	key := TraceKey(c, id)
	raw, info, err := s.objects.Open(ctx, key)
	if errors.Is(err, ErrNotFound) {
		if _, rerr := s.index.Remove(ctx, c, id, rec.Generation); rerr != nil {
			return Read{}, fmt.Errorf("remove stale %s: %w", key, rerr)
		}
		return Read{}, fmt.Errorf("get %s: %w", key, err)
	}
	if err != nil {
		return Read{}, fmt.Errorf("get %s: %w", key, err)
	}
	t, err := s.decodeStored(raw, info)
	if err != nil {
		return Read{}, fmt.Errorf("get %s: %w", key, err)
	}
	if rec.Layers > 0 {
		layers, err := s.readLayers(ctx, c, id, rec.Layers, info.Generation)
		if err != nil {
			return Read{}, fmt.Errorf("get %s: %w", key, err)
		}
		t = MergeLayers(t, layers)
	}
	return Read{Trace: t, Generation: info.Generation, Record: rec}, nil
}

// decodeStored undoes the storage format.
func (s *Service) decodeStored(raw []byte, info ObjectInfo) (*Trace, error) {
	doc := raw
	// GCS transcodes gzip objects unless the reader accepts gzip, so look at
	// the bytes: a msgpack document never starts with gzip's magic.
	if len(raw) >= 2 && raw[0] == 0x1f && raw[1] == 0x8b {
		var err error
		if doc, err = decompress(raw); err != nil {
			return nil, fmt.Errorf("decompress: %w", err)
		}
	}
	lim := s.Limits
	lim.MaxBody = int64(len(doc))
	return DecodeTrace(doc, false, lim)
}

// Recent lists the newest traces that touched tlid, newest first.
func (s *Service) Recent(ctx context.Context, c CanvasID, tlid TLID, limit int) ([]Summary, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	return s.index.Recent(ctx, c, tlid, limit)
}

// RecentMany lists the newest traces of many toplevels in one round trip.
func (s *Service) RecentMany(ctx context.Context, c CanvasID, tlids []TLID, limit int) (map[TLID][]Summary, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	if len(tlids) > MaxBatchTLIDs {
		return nil, TooLarge("tlids", MaxBatchTLIDs)
	}
	return s.index.RecentMany(ctx, c, tlids, limit)
}

// Find looks a trace up by its ID alone (support work).
func (s *Service) Find(ctx context.Context, id TraceID) (Record, error) {
	return s.index.Find(ctx, id)
}

func checkLimit(limit int) error {
	if limit < 1 || limit > MaxListLimit {
		return Invalid("limit", "must be between 1 and %d", MaxListLimit)
	}
	return nil
}

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

func compress(doc []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(doc)/2 + 64)
	w := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(w)
	w.Reset(&buf)
	if _, err := w.Write(doc); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func decompress(b []byte) ([]byte, error) {
	r, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}
