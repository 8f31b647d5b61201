package tracestore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// maxClockSkew is how far a caller-supplied ID's embedded time may be from
// the trace's timestamp.
const maxClockSkew = 24 * time.Hour

// OpTimeout bounds an operation that writes in several steps (replace,
// layer add, repair): GC's repair step takes a trace only once its token is
// older than any operation may run (ttl.Options.RepairGrace, 2 minutes).
const OpTimeout = time.Minute

// objects is what the Service needs from Cloud Storage.
type objects interface {
	// Create writes a new object only if the key is absent; an existing one
	// wraps traces.ErrPreconditionFailed.
	Create(ctx context.Context, key string, body []byte, o traces.NewObject) (traces.ObjectInfo, error)
	// Open returns the stored bytes (not transcoded) and attributes.
	Open(ctx context.Context, key string) ([]byte, traces.ObjectInfo, error)
	// Stat returns the attributes; absent wraps traces.ErrNotFound.
	Stat(ctx context.Context, key string) (traces.ObjectInfo, error)
	replaceObjects // replace.go
	layerObjects   // layers.go
}

// store is what the Service needs from the PostgreSQL index.
type store interface {
	PutTrace(ctx context.Context, r traces.Record, now time.Time) (index.Put, error)
	Get(ctx context.Context, c traces.CanvasID, id traces.TraceID) (traces.Record, error)
	Find(ctx context.Context, id traces.TraceID, limit int) ([]traces.Record, error)
	Remove(ctx context.Context, c traces.CanvasID, id traces.TraceID, maxGeneration int64) (bool, error)
	listIndex      // list.go
	replaceIndex   // replace.go
	layerIndex     // layers.go
	repairIndex    // repair.go
	unmatchedIndex // unmatched.go
	canvasIndex    // canvases.go
}

// Renewer renews, at once, the latest traces of toplevels whose keepers
// just changed (a deleted toplevel came back to life, an old trace became
// the keeper of a new toplevel, a replace dropped a keeper): such a trace
// may be days old and was never renewed, and the GC's next pass may come
// too late for it. *ttl.GC implements it.
type Renewer interface {
	RenewToplevels(ctx context.Context, c traces.CanvasID, tlids []traces.TLID) error
}

// HoldConformer brings a trace's objects to the hold its index row records
// (holds.Service implements it); the repair step runs it first.
type HoldConformer interface {
	Conform(ctx context.Context, c traces.CanvasID, id traces.TraceID) error
}

// Options configures a Service. The zero value of each field is a default.
type Options struct {
	Now    func() time.Time // the clock; time.Now when nil
	Logger *slog.Logger     // nil discards
	// Limits bound decoding of stored objects and list sizes.
	Limits traces.Limits
	// Retention is how long unmatched requests are listed after they
	// arrive (default 7 days), and the retention listings assume without
	// Policy. It should equal the bucket lifecycle rule's, which deletes
	// their objects.
	Retention time.Duration
	// Renewer, if set, renews keepers that an operation promoted (see
	// Renewer); without it they wait for the GC's next pass.
	Renewer Renewer
	// Holds, if set, conforms objects' holds during Repair.
	Holds HoldConformer
	// Policy, if set, is the policy listings describe (retention and the
	// global keep-N, as GC resolves them); without it Retention and Keep.
	Policy Policy
	// Keep is the global keep-N listings assume without Policy (default
	// DefaultKeep).
	Keep int
	// Uploads, if set, signs direct uploads (UploadSlot, Finalize; see
	// direct.go); nil turns them off.
	Uploads UploadSigner
}

// Service saves, reads, replaces and lists traces, adds layers, repairs
// traces whose operations did not finish, and keeps unmatched requests:
// each writes the objects and then the index, so that the index never
// describes an object that was not written. It is safe for concurrent use.
type Service struct {
	objects objects
	index   store
	o       Options
	now     func() time.Time
	log     *slog.Logger
}

// DefaultRetention is the default retention period.
const DefaultRetention = 7 * 24 * time.Hour

// DefaultKeep is the default keep-N.
const DefaultKeep = 10

// New returns a Service over objs (an *objstore.GCS) and ix (an *index.DB).
func New(objs objects, ix store, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Limits == (traces.Limits{}) {
		o.Limits = traces.DefaultLimits
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	if o.Keep <= 0 {
		o.Keep = DefaultKeep
	}
	return &Service{objects: objs, index: ix, o: o, now: o.Now, log: o.Logger.With("component", "tracestore")}
}

// Saved is the outcome of Save.
type Saved struct {
	ID         traces.TraceID
	Generation int64
	Created    bool // false: an identical trace was already stored (a retry)
}

// Prepare fills a trace's ID and timestamp as Save would and checks that a
// caller-supplied ID agrees with the timestamp and that neither is more than
// a day ahead of now. It errors with a *traces.FieldError.
func Prepare(t *traces.Trace, now time.Time) error {
	fromID := false // the timestamp comes from a caller's ID
	switch {
	case t.ID.IsZero() && t.Timestamp.IsZero():
		t.Timestamp = now
		t.ID = traces.NewTraceID(now)
	case t.ID.IsZero():
		t.ID = traces.NewTraceID(t.Timestamp)
	case t.Timestamp.IsZero():
		// A retry without a timestamp must produce the same document, so the
		// default comes from the ID, not from the clock.
		t.Timestamp, fromID = t.ID.Time(), true
	default:
		if d := t.ID.Time().Sub(t.Timestamp); d > maxClockSkew || d < -maxClockSkew {
			return traces.Invalid("traceID", "embedded time %s is more than a day away from timestamp %s",
				t.ID.Time().Format(time.RFC3339), t.Timestamp.UTC().Format(time.RFC3339))
		}
	}
	// A trace from the future would top every list it is in, and be kept,
	// for as long as its clock is ahead.
	if limit := now.Add(maxClockSkew); t.Timestamp.After(limit) || t.ID.Time().After(limit) {
		if fromID {
			return traces.Invalid("traceID", "embedded time %s is more than a day in the future", t.ID.Time().Format(time.RFC3339))
		}
		return traces.Invalid("timestamp", "%s is more than a day in the future", t.Timestamp.UTC().Format(time.RFC3339))
	}
	t.Timestamp = t.Timestamp.UTC().Truncate(time.Millisecond)
	t.TLIDs = withRoot(t.RootTLID, t.TLIDs)
	return nil
}

func withRoot(root traces.TLID, tlids []traces.TLID) []traces.TLID {
	for _, t := range tlids {
		if t == root {
			return tlids
		}
	}
	return append([]traces.TLID{root}, tlids...)
}

// record is the index record of trace t stored as info with customTime ct:
// it names every tlid the trace touches, function results' included.
func record(c traces.CanvasID, t *traces.Trace, info traces.ObjectInfo, ct time.Time) traces.Record {
	return traces.Record{
		Canvas: c, ID: t.ID, RootTLID: t.RootTLID, TLIDs: traces.Touched(t), Timestamp: t.Timestamp,
		Generation: info.Generation, CustomTime: ct,
	}
}

// Save stores a new trace: the object first (create-only, customTime = now),
// then its index rows in one round trip. A crash between the two leaves an
// orphan object that the bucket expires; a retry of the same document finds
// the object, recognises it by its hash and writes the index rows (Created
// false). A different document under the same ID wraps traces.ErrConflict.
// A trace saved again after its object expired replaces the rows of the
// expired generation. A save into a deleted canvas wraps
// traces.ErrNotFound and deletes the object it wrote. Backend faults wrap
// traces.ErrUnavailable.
func (s *Service) Save(ctx context.Context, c traces.CanvasID, t *traces.Trace) (Saved, error) {
	return s.save(ctx, c, t, Received{}, false)
}

// Received is a save's request body as it arrived, when it was msgpack:
// Doc the document t was decoded from, Gzip its compressed form when the
// client sent one (Content-Encoding: gzip; traces.Inflate read it). Both
// are only read.
type Received struct {
	Doc, Gzip []byte
}

// SaveReceived is Save for a trace decoded from in. When in.Doc is
// already the document Save would store (the canonical msgpack encoding of
// the prepared trace: the Go client sends it) and in.Gzip is set, the
// client's gzip is stored as it is: the stored document, its hash and so
// retry detection are exactly Save's, without compressing it again.
// Otherwise it is Save.
func (s *Service) SaveReceived(ctx context.Context, c traces.CanvasID, t *traces.Trace, in Received) (Saved, error) {
	return s.save(ctx, c, t, in, false)
}

// save is Save of a trace received as in; imported gives the object the
// trace's own timestamp as customTime (import.go).
func (s *Service) save(ctx context.Context, c traces.CanvasID, t *traces.Trace, in Received, imported bool) (Saved, error) {
	now := s.now()
	if err := Prepare(t, now); err != nil {
		return Saved{}, err
	}
	st, err := stored(t, in)
	if err != nil {
		return Saved{}, fmt.Errorf("save trace: %w", err)
	}
	key := traces.TraceKey(c, t.ID)
	ct := now.UTC().Truncate(time.Second) // what the client sends as customTime
	if imported {
		ct = importedCustomTime(t.Timestamp, now)
	}
	obj := st.Object(ct)
	created := true
	info, err := s.objects.Create(ctx, key, st.Body, obj)
	for range 2 {
		if !errors.Is(err, traces.ErrPreconditionFailed) {
			break
		}
		created = false
		info, err = s.objects.Stat(ctx, key)
		if errors.Is(err, traces.ErrNotFound) {
			// Deleted between our create and our look (the bucket expired an
			// orphan of an earlier attempt): create it afresh.
			created = true
			info, err = s.objects.Create(ctx, key, st.Body, obj)
			continue
		}
		if err == nil && !st.Holds(info) {
			return Saved{}, traces.Public(fmt.Errorf("save %s: %w", key, traces.ErrConflict),
				"trace %s exists with different content: a trace ID names one document", t.ID)
		}
		if err == nil {
			ct = info.CustomTime
		}
	}
	if err != nil {
		return Saved{}, fmt.Errorf("save %s: %w", key, err)
	}
	put, err := s.index.PutTrace(ctx, record(c, t, info, ct), now)
	if errors.Is(err, traces.ErrNotFound) && created {
		// The canvas was deleted: the deletion job may have listed the
		// canvas before this object existed.
		s.dropUpload(ctx, key, info.Generation)
	}
	if err != nil {
		return Saved{}, traces.PublicIf(fmt.Errorf("index %s: %w", key, err), traces.ErrNotFound, "canvas %s was deleted", c)
	}
	if imported {
		if err := s.renewImported(ctx, c, t, ct, now, put.Due); err != nil {
			return Saved{}, err
		}
	} else {
		s.renewDue(ctx, c, put.Due)
	}
	return Saved{ID: t.ID, Generation: info.Generation, Created: created}, nil
}

// docBuffers holds the buffers of canonical encodings, which stored drops
// once it has compressed or compared them.
var docBuffers = sync.Pool{New: func() any { return new([]byte) }}

// stored is the object of prepared trace t received as in.
func stored(t *traces.Trace, in Received) (traces.Stored, error) {
	bp := docBuffers.Get().(*[]byte)
	defer docBuffers.Put(bp)
	doc := traces.AppendTraceMsgpack((*bp)[:0], t)
	if cap(doc) <= 4<<20 { // keep ordinary buffers, not a 16 MiB one
		*bp = doc
	}
	if in.Gzip != nil && bytes.Equal(doc, in.Doc) {
		return traces.StoreCompressed(doc, in.Gzip), nil
	}
	return traces.Store(doc)
}

// renewDue hands toplevels an index write made due to the Renewer. A
// failure only delays them to the GC's next pass, so it is logged.
func (s *Service) renewDue(ctx context.Context, c traces.CanvasID, due []traces.TLID) {
	if len(due) == 0 || s.o.Renewer == nil {
		return
	}
	if err := s.o.Renewer.RenewToplevels(ctx, c, due); err != nil {
		s.log.Warn("renew promoted keepers", "canvas_id", c, "count", len(due), "err", err)
	}
}

// Read is a trace with all its layers merged, the generation of its
// object, and why it is still stored (judged from the index as listings
// judge it, before the object was read).
type Read struct {
	Trace      *traces.Trace
	Generation int64
	Record     traces.Record
	Kept       traces.Kept
}

// Get reads a trace and merges its layers 1..Record.Layers in order (the
// later layer winning per (tlid, exprID, fnName, argHash); a layer object
// that is gone, or that was added to an earlier generation of a replaced
// trace, is skipped). A trace unknown to the index, or whose object is
// gone, wraps traces.ErrNotFound; in the latter case its stale index rows
// are removed first (lost notifications heal on read). An object newer than
// the index describes (a replace whose index write failed) has its rows
// rewritten from it.
func (s *Service) Get(ctx context.Context, c traces.CanvasID, id traces.TraceID) (Read, error) {
	rec, kept, err := s.index.GetKept(ctx, c, id, s.judging(ctx))
	if err != nil {
		return Read{}, traces.PublicIf(fmt.Errorf("get %s: %w", id, err), traces.ErrNotFound, "trace %s not found", id)
	}
	key := traces.TraceKey(c, id)
	raw, info, err := s.objects.Open(ctx, key)
	if errors.Is(err, traces.ErrNotFound) {
		if _, rerr := s.index.Remove(ctx, c, id, rec.Generation); rerr != nil {
			return Read{}, fmt.Errorf("remove stale %s: %w", key, rerr)
		}
		return Read{}, traces.Public(fmt.Errorf("get %s: %w", key, err), "trace %s not found (it expired)", id)
	}
	if err != nil {
		return Read{}, fmt.Errorf("get %s: %w", key, err)
	}
	t, err := traces.DecodeStoredTrace(raw, s.o.Limits)
	if err != nil {
		return Read{}, fmt.Errorf("get %s: %w", key, err)
	}
	if info.Generation > rec.Generation {
		s.heal(ctx, c, t, info)
		rec.Layers = 0 // they belong to the older generation
	}
	if rec.Layers > 0 {
		layers, _, _, err := s.readLayers(ctx, c, id, rec.Layers, info.Generation)
		if err != nil {
			return Read{}, fmt.Errorf("get %s: %w", key, err)
		}
		t = traces.MergeLayers(t, layers)
	}
	return Read{Trace: t, Generation: info.Generation, Record: rec, Kept: kept}, nil
}

// heal rewrites the rows of a trace whose object is newer than they say.
// Best effort: the repair step does the same for an operation that left a
// token, and the next read tries again.
func (s *Service) heal(ctx context.Context, c traces.CanvasID, t *traces.Trace, info traces.ObjectInfo) {
	rep, err := s.index.Reindex(ctx, record(c, t, info, info.CustomTime), s.now(), time.Time{})
	if err != nil {
		s.log.Warn("heal index of a replaced trace", "canvas_id", c, "trace_id", t.ID, "err", err)
		return
	}
	if rep.Replaced && rep.OldLayers > 0 {
		s.dropLayers(ctx, c, t.ID, rep.OldLayers, info.Generation)
	}
	s.renewDue(ctx, c, rep.Due)
}

// Find looks a trace up by its ID alone (support work): the records of
// every canvas that holds that ID, by canvas ID, at most limit of them.
// None wraps traces.ErrNotFound.
func (s *Service) Find(ctx context.Context, id traces.TraceID, limit int) ([]traces.Record, error) {
	recs, err := s.index.Find(ctx, id, max(limit, 1))
	return recs, traces.PublicIf(err, traces.ErrNotFound, "trace %s not found", id)
}
