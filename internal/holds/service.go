package holds

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// DefaultQuota is how many traces a canvas may hold at once unless
// Service.Quota says otherwise.
const DefaultQuota = 100

// MaxReason bounds a hold's reason, in bytes.
const MaxReason = 1024

// Hold is a held trace: its ID, the reason given and when it was held.
type Hold = index.Hold

// objects is what holds needs from Cloud Storage.
type objects interface {
	// SetTemporaryHold places or releases the hold; a non-zero customTime
	// is set in the same PATCH. Absent wraps traces.ErrNotFound.
	SetTemporaryHold(ctx context.Context, key string, held bool, customTime time.Time) (traces.ObjectInfo, error)
	// Stat returns the attributes; absent wraps traces.ErrNotFound.
	Stat(ctx context.Context, key string) (traces.ObjectInfo, error)
	// Objects lists the objects under prefix.
	Objects(ctx context.Context, prefix string) iter.Seq2[traces.ObjectInfo, error]
}

// store is what holds needs from the index.
type store interface {
	Get(ctx context.Context, c traces.CanvasID, id traces.TraceID) (traces.Record, error)
	HeldCount(ctx context.Context, c traces.CanvasID, atMost int) (int, error)
	SetHold(ctx context.Context, c traces.CanvasID, id traces.TraceID, reason string, heldAt time.Time) (index.Hold, error)
	ClearHold(ctx context.Context, c traces.CanvasID, id traces.TraceID, customTime time.Time) error
	Holds(ctx context.Context, c traces.CanvasID) ([]index.Hold, error)
	Remove(ctx context.Context, c traces.CanvasID, id traces.TraceID, maxGeneration int64) (bool, error)
}

// Service places, lists and releases holds. It is safe for concurrent use.
type Service struct {
	objects objects
	index   store
	now     func() time.Time
	log     *slog.Logger
	// Quota is how many traces a canvas may hold at once; 0 or less means
	// DefaultQuota. Concurrent holds may overshoot it by their number, and
	// a hold already placed on the object (a retry after a crash) is
	// completed even beyond it.
	Quota int
}

// New wires the service: o is the bucket (*objstore.GCS), ix the index
// (*index.DB), now the clock (shared with the emulator in `tracegw dev`);
// log may be nil.
func New(o objects, ix store, now func() time.Time, log *slog.Logger) *Service {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Service{objects: o, index: ix, now: now, log: log.With("component", "holds"), Quota: DefaultQuota}
}

func (s *Service) quota() int {
	if s.Quota <= 0 {
		return DefaultQuota
	}
	return s.Quota
}

// Hold holds a trace: GCS's temporaryHold on the trace object, then on each
// of its layers, then (reason, now) in the index, so the bucket never
// expires it. Holding a held trace again is harmless; it keeps the original
// time, and a non-empty reason replaces the recorded one. A trace unknown
// to the index wraps traces.ErrNotFound; so does one whose object is gone,
// after its index rows are removed. A canvas at its quota wraps
// traces.ErrExhausted, unless this trace is held already (in the index or,
// after a crash between object and index, on the object). A reason over
// MaxReason bytes is a *traces.FieldError. Backend faults wrap
// traces.ErrUnavailable; retrying is always safe.
func (s *Service) Hold(ctx context.Context, c traces.CanvasID, id traces.TraceID, reason string) (Hold, error) {
	if err := checkReason(reason); err != nil {
		return Hold{}, err
	}
	rec, err := s.index.Get(ctx, c, id)
	if err != nil {
		return Hold{}, fmt.Errorf("hold %s: %w", id, err)
	}
	if !rec.Held {
		if err := s.checkQuota(ctx, rec); err != nil {
			return Hold{}, fmt.Errorf("hold %s: %w", id, err)
		}
	}
	if err := s.holdObjects(ctx, rec); err != nil {
		return Hold{}, fmt.Errorf("hold %s: %w", id, err)
	}
	h, err := s.index.SetHold(ctx, c, id, reason, s.now().UTC())
	if err != nil {
		return Hold{}, fmt.Errorf("hold %s: %w", id, err)
	}
	s.log.Debug("trace held", "canvas_id", c, "trace_id", id)
	return h, nil
}

func checkReason(reason string) error {
	switch {
	case len(reason) > MaxReason:
		return traces.TooLarge("reason", MaxReason)
	case !utf8.ValidString(reason) || strings.IndexByte(reason, 0) >= 0:
		return traces.Invalid("reason", "must be valid UTF-8 without NUL bytes")
	}
	return nil
}

// checkQuota refuses a new hold on a canvas at its quota. The object's state
// wins: a hold whose index write was lost is completed, not refused, since
// refusing would leave a held object nobody sees in the list.
func (s *Service) checkQuota(ctx context.Context, rec traces.Record) error {
	n, err := s.index.HeldCount(ctx, rec.Canvas, s.quota())
	if err != nil {
		return err
	}
	if n < s.quota() {
		return nil
	}
	key := traces.TraceKey(rec.Canvas, rec.ID)
	info, err := s.objects.Stat(ctx, key)
	if errors.Is(err, traces.ErrNotFound) {
		return s.gone(ctx, rec, err)
	}
	if err != nil {
		return err
	}
	if info.TemporaryHold {
		return nil
	}
	return fmt.Errorf("canvas %s already holds %d traces, its quota: release one first: %w", rec.Canvas, n, traces.ErrExhausted)
}

// holdObjects places the hold on the trace object, then on its layers. The
// trace object goes first so that a crash leaves it, the one object
// Reconcile compares with the index, disagreeing with the index.
func (s *Service) holdObjects(ctx context.Context, rec traces.Record) error {
	key := traces.TraceKey(rec.Canvas, rec.ID)
	_, err := s.objects.SetTemporaryHold(ctx, key, true, time.Time{})
	if errors.Is(err, traces.ErrNotFound) {
		return s.gone(ctx, rec, err)
	}
	if err != nil {
		return err
	}
	for n := 1; n <= rec.Layers; n++ {
		// A missing layer expired or was never finished; nothing to keep.
		if _, err := s.objects.SetTemporaryHold(ctx, traces.LayerKey(rec.Canvas, rec.ID, n), true, time.Time{}); err != nil && !errors.Is(err, traces.ErrNotFound) {
			return err
		}
	}
	return nil
}

// gone removes the index rows of a trace whose object is gone (a lost
// deletion notification) and returns notFound, which wraps ErrNotFound.
func (s *Service) gone(ctx context.Context, rec traces.Record, notFound error) error {
	if _, err := s.index.Remove(ctx, rec.Canvas, rec.ID, rec.Generation); err != nil {
		return fmt.Errorf("remove stale rows: %w", err)
	}
	return notFound
}

// Release releases a trace's hold: temporaryHold=false and customTime=now in
// one PATCH on the trace object, then on each layer, then the index (not
// held, custom_time = now), so the trace is kept a full retention period
// from now and then follows the normal policy. Releasing a trace that is not
// held changes nothing (its retention is not renewed) unless its object is
// held after all (a crash between object and index), which is then
// released. Errors as for Hold, without the quota; retrying is always safe.
func (s *Service) Release(ctx context.Context, c traces.CanvasID, id traces.TraceID) error {
	rec, err := s.index.Get(ctx, c, id)
	if err != nil {
		return fmt.Errorf("release %s: %w", id, err)
	}
	if !rec.Held {
		info, err := s.objects.Stat(ctx, traces.TraceKey(c, id))
		if errors.Is(err, traces.ErrNotFound) {
			return fmt.Errorf("release %s: %w", id, s.gone(ctx, rec, err))
		}
		if err != nil {
			return fmt.Errorf("release %s: %w", id, err)
		}
		if !info.TemporaryHold {
			return nil
		}
	}
	if err := s.release(ctx, rec); err != nil {
		return fmt.Errorf("release %s: %w", id, err)
	}
	s.log.Debug("trace released", "canvas_id", c, "trace_id", id)
	return nil
}

// release releases the objects of rec, trace object first, and clears the
// index's hold.
func (s *Service) release(ctx context.Context, rec traces.Record) error {
	now := s.now().UTC().Truncate(time.Second) // what GCS stores as customTime
	err := s.releaseObject(ctx, traces.TraceKey(rec.Canvas, rec.ID), now)
	if errors.Is(err, traces.ErrNotFound) {
		return s.gone(ctx, rec, err)
	}
	if err != nil {
		return err
	}
	for n := 1; n <= rec.Layers; n++ {
		if err := s.releaseObject(ctx, traces.LayerKey(rec.Canvas, rec.ID, n), now); err != nil && !errors.Is(err, traces.ErrNotFound) {
			return err
		}
	}
	return s.index.ClearHold(ctx, rec.Canvas, rec.ID, now)
}

// releaseObject clears key's hold and moves its customTime to now in one
// PATCH: released with a stale customTime, the object would be deleted by
// the next lifecycle sweep. customTime only moves forward, so if another
// replica whose clock runs ahead already set a later one GCS refuses ours;
// the later one serves as well, so the hold alone is then cleared.
func (s *Service) releaseObject(ctx context.Context, key string, now time.Time) error {
	_, err := s.objects.SetTemporaryHold(ctx, key, false, now)
	if err == nil || errors.Is(err, traces.ErrNotFound) || errors.Is(err, traces.ErrUnavailable) {
		return err
	}
	info, serr := s.objects.Stat(ctx, key)
	if serr != nil || info.CustomTime.Before(now) {
		return err
	}
	_, err = s.objects.SetTemporaryHold(ctx, key, false, time.Time{})
	return err
}

// List returns the canvas's held traces as the index records them, most
// recently held first. Errors wrap traces.ErrUnavailable when the index
// cannot be reached.
func (s *Service) List(ctx context.Context, c traces.CanvasID) ([]Hold, error) {
	hs, err := s.index.Holds(ctx, c)
	if err != nil {
		return nil, fmt.Errorf("list holds: %w", err)
	}
	return hs, nil
}
