package tracestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// Direct uploads: a large trace goes from the executor straight to its
// final object, so its bytes never pass through the gateway's HTTP server
// and it is never compressed here. UploadSlot signs a V4 URL for a
// create-only PUT of {canvasID}/traces/{traceID} whose signed headers fix
// everything a save would set: x-goog-if-generation-match: 0, customTime
// (the gateway's clock, so retention starts at creation), content type and
// encoding, the format version and the document hash the client declares,
// and a content-length range up to the body limit. Nothing is recorded:
// the slot is the signature, and it expires by itself (UploadTTL).
//
// Finalize then reads the object once and validates it exactly as a save
// validates a body (inflated within the body limit, decoded with the same
// limits, prepared, and required to be the canonical document, whose hash
// it must carry), and only then indexes it: the index is written after the
// object and describes what the object holds, not what the client says.
// An object that fails is deleted (it has no index rows), so its ID is
// free again. Its answers are a save's: 201 the first time, 200 for a
// repeat, 409 when another document holds the ID.

// UploadTTL is how long an upload URL is valid.
const UploadTTL = 15 * time.Minute

// UploadSigner signs the URL of one create-only upload; *objstore.Signer
// implements it.
type UploadSigner interface {
	// SignCreate returns a URL valid from now for ttl and the headers the
	// PUT must carry, for an object key as o describes of at most maxSize
	// bytes, created only if absent.
	SignCreate(key string, o traces.NewObject, maxSize int64, now time.Time, ttl time.Duration) (string, map[string]string, error)
}

// storedOpener reads an object as stored, compressed, more cheaply than
// Open (*objstore.GCS with XML uploads); finalize uses it when it can.
type storedOpener interface {
	OpenStored(ctx context.Context, key string) ([]byte, traces.ObjectInfo, error)
}

// UploadSlot is where and how to upload one trace object.
type UploadSlot struct {
	TraceID traces.TraceID
	URL     string
	Method  string            // PUT
	Headers map[string]string // to send exactly as given
	Expires time.Time
}

// UploadSlot signs the upload of trace id, whose stored document (the
// canonical msgpack encoding, as Save stores it) hashes to sha (hex
// SHA-256), into canvas c. Without Options.Uploads it wraps
// traces.ErrNotFound (direct uploads are off: save with POST). A missing
// or malformed ID or hash is a *traces.FieldError.
func (s *Service) UploadSlot(ctx context.Context, c traces.CanvasID, id traces.TraceID, sha string) (UploadSlot, error) {
	if s.o.Uploads == nil {
		return UploadSlot{}, traces.Public(fmt.Errorf("upload slot: %w", traces.ErrNotFound), "direct uploads are not enabled on this gateway: save with POST …/traces")
	}
	if err := checkUpload(id, sha, s.now()); err != nil {
		return UploadSlot{}, err
	}
	now := s.now()
	o := traces.Stored{Hash: sha}.Object(now.UTC().Truncate(time.Second))
	url, hdr, err := s.o.Uploads.SignCreate(traces.TraceKey(c, id), o, s.o.Limits.MaxBody, now, UploadTTL)
	if err != nil {
		return UploadSlot{}, fmt.Errorf("upload slot %s: %w", id, err)
	}
	return UploadSlot{TraceID: id, URL: url, Method: "PUT", Headers: hdr, Expires: now.Add(UploadTTL)}, nil
}

// checkUpload validates the trace ID and hash of an upload.
func checkUpload(id traces.TraceID, sha string, now time.Time) error {
	if id.IsZero() {
		return traces.Invalid("traceID", "required")
	}
	if err := Prepare(&traces.Trace{ID: id}, now); err != nil {
		return err
	}
	if len(sha) != 64 {
		return traces.Invalid("sha256", "must be the 64 lower-case hex digits of the document's SHA-256")
	}
	for _, r := range sha {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return traces.Invalid("sha256", "must be the 64 lower-case hex digits of the document's SHA-256")
		}
	}
	return nil
}

// Finalize indexes the trace uploaded to an UploadSlot of id whose
// document hashes to sha: it checks the object's format and hash metadata,
// reads and validates it as Save validates a body, and writes its index
// rows (Created false when they were already written: a repeat). No
// object wraps traces.ErrNotFound; an object of another document
// traces.ErrConflict; an object that fails validation is deleted and the
// *traces.FieldError returned. Backend faults wrap traces.ErrUnavailable.
func (s *Service) Finalize(ctx context.Context, c traces.CanvasID, id traces.TraceID, sha string) (Saved, error) {
	now := s.now()
	if err := checkUpload(id, sha, now); err != nil {
		return Saved{}, err
	}
	key := traces.TraceKey(c, id)
	info, err := s.objects.Stat(ctx, key)
	if errors.Is(err, traces.ErrNotFound) {
		return Saved{}, traces.Public(fmt.Errorf("finalize %s: %w", key, err), "trace %s was not uploaded: PUT it to the upload URL first", id)
	}
	if err != nil {
		return Saved{}, fmt.Errorf("finalize %s: %w", key, err)
	}
	if !(traces.Stored{Hash: sha}).Holds(info) || !traces.IsStoredFormat(info) || info.CustomTime.IsZero() {
		return Saved{}, traces.Public(fmt.Errorf("finalize %s: %w", key, traces.ErrConflict),
			"trace %s exists with different content: a trace ID names one document", id)
	}
	// A repeat of a finalize that indexed this generation: nothing to read.
	if rec, err := s.index.Get(ctx, c, id); err == nil && rec.Generation == info.Generation {
		return Saved{ID: id, Generation: info.Generation}, nil
	}
	t, err := s.readUpload(ctx, key, id, sha, info, now)
	if err != nil {
		return Saved{}, err
	}
	put, err := s.index.PutTrace(ctx, record(c, t, info, info.CustomTime), now)
	if errors.Is(err, traces.ErrNotFound) {
		s.dropUpload(ctx, key, info.Generation) // the canvas was deleted
	}
	if err != nil {
		return Saved{}, traces.PublicIf(fmt.Errorf("index %s: %w", key, err), traces.ErrNotFound, "canvas %s was deleted", c)
	}
	s.renewDue(ctx, c, put.Due)
	return Saved{ID: id, Generation: info.Generation, Created: put.Created}, nil
}

// readUpload reads generation info.Generation of key and validates it as
// the document of trace id hashing to sha. An object that fails is
// deleted.
func (s *Service) readUpload(ctx context.Context, key string, id traces.TraceID, sha string, info traces.ObjectInfo, now time.Time) (*traces.Trace, error) {
	open := s.objects.Open
	if o, ok := s.objects.(storedOpener); ok {
		open = o.OpenStored
	}
	raw, got, err := open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("finalize %s: %w", key, err)
	}
	if got.Generation != info.Generation {
		return nil, fmt.Errorf("finalize %s: generation %d became %d while it was read: %w", key, info.Generation, got.Generation, traces.ErrUnavailable)
	}
	t, err := validUpload(raw, id, sha, s.o.Limits, now)
	if err != nil {
		s.dropUpload(ctx, key, info.Generation)
		return nil, err
	}
	return t, nil
}

// validUpload decodes an uploaded object as Save would store trace id: the
// same limits, the document hashing to sha, and the canonical form.
func validUpload(raw []byte, id traces.TraceID, sha string, lim traces.Limits, now time.Time) (*traces.Trace, error) {
	lim = lim.OrDefault()
	doc, err := traces.UnstoreLimit(raw, lim.MaxBody, "body")
	if err != nil {
		return nil, err
	}
	if traces.DocumentHash(doc) != sha {
		return nil, traces.Invalid("sha256", "the uploaded object's document does not hash to %s", sha)
	}
	t, err := traces.DecodeTrace(doc, false, lim)
	if err != nil {
		return nil, err
	}
	if t.ID != id {
		return nil, traces.Invalid("traceID", "the uploaded document names trace %s, not %s", t.ID, id)
	}
	if err := Prepare(t, now); err != nil {
		return nil, err
	}
	bp := docBuffers.Get().(*[]byte)
	defer docBuffers.Put(bp)
	canon := traces.AppendTraceMsgpack((*bp)[:0], t)
	if cap(canon) <= 4<<20 {
		*bp = canon
	}
	if !bytes.Equal(canon, doc) {
		return nil, traces.Invalid("body", "the uploaded document is not in canonical form (traceID and timestamp set, "+
			"the timestamp in whole milliseconds UTC, tlids without repeats and with the root, keys in the documented order)")
	}
	return t, nil
}

// dropUpload deletes an upload that will not be indexed. Best effort: an
// object left behind has no index rows and expires with its customTime.
func (s *Service) dropUpload(ctx context.Context, key string, gen int64) {
	if err := s.objects.Delete(ctx, key, gen); err != nil && !errors.Is(err, traces.ErrNotFound) {
		s.log.Warn("delete a refused upload", "key", key, "generation", gen, "err", err)
	}
}
