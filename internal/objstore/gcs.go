package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"math/rand/v2"
	"time"

	"cloud.google.com/go/storage"
	"github.com/googleapis/gax-go/v2"
	"google.golang.org/api/iterator"

	"github.com/tracegw/tracegw/internal/traces"
)

// GCS is one bucket. It is safe for concurrent use; the caller owns and closes
// the storage client.
type GCS struct {
	bucket *storage.BucketHandle
	name   string
	// Attempts bounds how often a call is tried on 429/5xx/network errors
	// (default 4); past it the error wraps traces.ErrUnavailable so the
	// caller can answer 503 instead of hanging.
	Attempts int
	xml      *xmlUploads // UseXMLUploads: Create's lean path
}

// New returns the adapter for bucket.
func New(client *storage.Client, bucket string) *GCS {
	return &GCS{bucket: client.Bucket(bucket), name: bucket, Attempts: 4}
}

// Bucket is the bucket's name.
func (g *GCS) Bucket() string { return g.name }

// obj returns a handle whose retries are bounded. always marks calls that are
// safe to repeat whatever their preconditions (value-idempotent patches).
func (g *GCS) obj(key string, always bool) *storage.ObjectHandle {
	opts := []storage.RetryOption{
		storage.WithBackoff(gax.Backoff{Initial: 50 * time.Millisecond, Max: time.Second, Multiplier: 2}),
		storage.WithMaxAttempts(g.Attempts),
	}
	if always {
		opts = append(opts, storage.WithPolicy(storage.RetryAlways))
	}
	return g.bucket.Object(key).Retryer(opts...)
}

// Create writes body as a new object, only if key does not exist yet
// (ifGenerationMatch=0). An existing object gives an error wrapping
// traces.ErrPreconditionFailed. The upload is one request with no buffer
// (ChunkSize 0, sized to the object); since the client cannot retry such a
// write itself, Create retries transient failures here — safe, because the
// precondition means a repeat can never clobber anything. A 412 on a repeat
// therefore may mean an earlier attempt landed: callers compare contents.
// With UseXMLUploads the write is one XML API PUT (xml.go); the returned
// info then holds what was sent plus the generation the answer names.
func (g *GCS) Create(ctx context.Context, key string, body []byte, o traces.NewObject) (traces.ObjectInfo, error) {
	return g.write(ctx, key, body, o, storage.Conditions{DoesNotExist: true})
}

// Replace writes body as a new generation of key, only if the live generation
// is ifGeneration (0: only if absent). A mismatch wraps
// traces.ErrPreconditionFailed; a held object wraps traces.ErrHeld.
func (g *GCS) Replace(ctx context.Context, key string, body []byte, o traces.NewObject, ifGeneration int64) (traces.ObjectInfo, error) {
	if ifGeneration == 0 {
		return g.Create(ctx, key, body, o)
	}
	return g.write(ctx, key, body, o, storage.Conditions{GenerationMatch: ifGeneration})
}

func (g *GCS) write(ctx context.Context, key string, body []byte, o traces.NewObject, cond storage.Conditions) (traces.ObjectInfo, error) {
	var err error
	for attempt := 1; ; attempt++ {
		var info traces.ObjectInfo
		info, err = g.writeOnce(ctx, key, body, o, cond)
		if err == nil {
			return info, nil
		}
		if !errors.Is(err, traces.ErrUnavailable) || attempt >= g.Attempts || ctx.Err() != nil {
			return traces.ObjectInfo{}, err
		}
		if err := sleep(ctx, backoff(attempt)); err != nil {
			return traces.ObjectInfo{}, err
		}
	}
}

func (g *GCS) writeOnce(ctx context.Context, key string, body []byte, o traces.NewObject, cond storage.Conditions) (traces.ObjectInfo, error) {
	if g.xml != nil && cond.DoesNotExist {
		return g.xml.createXML(ctx, key, body, o)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // aborts the upload if Close is never reached
	w := g.bucket.Object(key).If(cond).NewWriter(ctx)
	w.ChunkSize = 0
	w.ContentType = o.ContentType
	w.ContentEncoding = o.ContentEncoding
	w.CustomTime = o.CustomTime
	w.Metadata = o.Metadata
	if _, err := w.Write(body); err != nil {
		_ = w.Close()
		return traces.ObjectInfo{}, translate("write "+key, err)
	}
	if err := w.Close(); err != nil {
		return traces.ObjectInfo{}, translate("write "+key, err)
	}
	return info(w.Attrs()), nil
}

// Open reads the whole object together with its attributes. An object
// stored with Content-Encoding: gzip may arrive compressed or transcoded,
// depending on the endpoint and transport; callers tell by the bytes.
// Absent: traces.ErrNotFound.
func (g *GCS) Open(ctx context.Context, key string) ([]byte, traces.ObjectInfo, error) {
	r, err := g.obj(key, false).NewReader(ctx)
	if err != nil {
		return nil, traces.ObjectInfo{}, translate("open "+key, err)
	}
	defer r.Close()
	buf := bytes.NewBuffer(make([]byte, 0, r.Attrs.Size+bytes.MinRead))
	if _, err := io.Copy(buf, r); err != nil {
		return nil, traces.ObjectInfo{}, translate("read "+key, err)
	}
	a := r.Attrs
	return buf.Bytes(), traces.ObjectInfo{
		Key: key, Generation: a.Generation, Metageneration: a.Metageneration,
		Size: a.Size, ContentType: a.ContentType, ContentEncoding: a.ContentEncoding,
		Created: a.LastModified,
	}, nil
}

// Stat returns the object's attributes. Absent: traces.ErrNotFound.
func (g *GCS) Stat(ctx context.Context, key string) (traces.ObjectInfo, error) {
	a, err := g.obj(key, false).Attrs(ctx)
	if err != nil {
		return traces.ObjectInfo{}, translate("stat "+key, err)
	}
	return info(a), nil
}

// SetCustomTime moves customTime forward to t (whole seconds, as the client
// sends it). ifMetageneration 0 means unconditional; the value is the same
// on every attempt, so retries are safe. A moved metageneration wraps
// traces.ErrPreconditionFailed; a missing object traces.ErrNotFound.
func (g *GCS) SetCustomTime(ctx context.Context, key string, t time.Time, ifMetageneration int64) (traces.ObjectInfo, error) {
	h := g.obj(key, true)
	if ifMetageneration != 0 {
		h = h.If(storage.Conditions{MetagenerationMatch: ifMetageneration})
	}
	a, err := h.Update(ctx, storage.ObjectAttrsToUpdate{CustomTime: t.UTC().Truncate(time.Second)})
	if err != nil {
		return traces.ObjectInfo{}, translate("set custom time "+key, err)
	}
	return info(a), nil
}

// SetTemporaryHold places or releases the object's temporary hold. A
// non-zero customTime is set in the same PATCH, so a released object is
// never left stale for the lifecycle rule to take at once.
func (g *GCS) SetTemporaryHold(ctx context.Context, key string, held bool, customTime time.Time) (traces.ObjectInfo, error) {
	u := storage.ObjectAttrsToUpdate{TemporaryHold: held}
	if !customTime.IsZero() {
		u.CustomTime = customTime.UTC().Truncate(time.Second)
	}
	a, err := g.obj(key, true).Update(ctx, u)
	if err != nil {
		return traces.ObjectInfo{}, translate("set hold "+key, err)
	}
	return info(a), nil
}

// Delete removes the object; ifGeneration 0 means any generation. Absent:
// traces.ErrNotFound; held: traces.ErrHeld.
func (g *GCS) Delete(ctx context.Context, key string, ifGeneration int64) error {
	h := g.obj(key, false)
	if ifGeneration != 0 {
		h = h.If(storage.Conditions{GenerationMatch: ifGeneration})
	}
	return translate("delete "+key, h.Delete(ctx))
}

// Objects lists the objects under prefix in name order, page by page.
func (g *GCS) Objects(ctx context.Context, prefix string) iter.Seq2[traces.ObjectInfo, error] {
	return func(yield func(traces.ObjectInfo, error) bool) {
		q := &storage.Query{Prefix: prefix}
		_ = q.SetAttrSelection([]string{"Name", "Generation", "Metageneration", "Size", "CustomTime", "TemporaryHold", "Created"})
		it := g.bucket.Objects(ctx, q)
		for {
			a, err := it.Next()
			if errors.Is(err, iterator.Done) {
				return
			}
			if err != nil {
				yield(traces.ObjectInfo{}, translate("list "+prefix, err))
				return
			}
			if !yield(info(a), nil) {
				return
			}
		}
	}
}

func info(a *storage.ObjectAttrs) traces.ObjectInfo {
	if a == nil {
		return traces.ObjectInfo{}
	}
	return traces.ObjectInfo{
		Key: a.Name, Generation: a.Generation, Metageneration: a.Metageneration,
		Size: a.Size, ContentType: a.ContentType, ContentEncoding: a.ContentEncoding,
		Created: a.Created, CustomTime: a.CustomTime, TemporaryHold: a.TemporaryHold,
		Metadata: a.Metadata,
	}
}

func backoff(attempt int) time.Duration {
	d := 50 * time.Millisecond << (attempt - 1)
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func errorf(step string, sentinel, err error) error {
	return fmt.Errorf("%s: %w: %w", step, sentinel, err)
}
