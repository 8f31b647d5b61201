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
// Options.Quota says otherwise.
const DefaultQuota = 100

// MaxReason bounds a hold's reason, in bytes.
const MaxReason = 1024

// OpTimeout bounds a hold, release or conform: GC's repair step takes a
// trace only once its operation token is older than any operation may run
// (ttl.Options.RepairGrace, 2 minutes).
const OpTimeout = time.Minute

// Hold is a held trace: its ID, the reason given, when and by whom it was
// held, and when the hold ends by itself (zero: never).
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
	BeginHold(ctx context.Context, c traces.CanvasID, id traces.TraceID, h index.HoldSpec, heldAt time.Time, quota int) (index.Holding, error)
	BeginRelease(ctx context.Context, c traces.CanvasID, id traces.TraceID) (index.Releasing, error)
	BeginExpire(ctx context.Context, c traces.CanvasID, id traces.TraceID, now time.Time) (index.Releasing, error)
	EndRelease(ctx context.Context, c traces.CanvasID, id traces.TraceID, tok index.Token, customTime time.Time) (bool, error)
	BeginOp(ctx context.Context, c traces.CanvasID, id traces.TraceID) (traces.Record, index.Token, error)
	EndOp(ctx context.Context, c traces.CanvasID, id traces.TraceID, tok index.Token, held bool) (bool, error)
	Get(ctx context.Context, c traces.CanvasID, id traces.TraceID) (traces.Record, error)
	Holds(ctx context.Context, c traces.CanvasID) ([]index.Hold, error)
	Remove(ctx context.Context, c traces.CanvasID, id traces.TraceID, maxGeneration int64) (bool, error)
}

// Options configures a Service; the zero value of each field is a default.
type Options struct {
	Now    func() time.Time // the clock; time.Now when nil
	Logger *slog.Logger     // nil discards
	// Quota is how many traces a canvas may hold at once (default
	// DefaultQuota). Concurrent holds may overshoot it by their number.
	Quota int
}

// Service places, lists and releases holds. It is safe for concurrent use.
type Service struct {
	objects objects
	index   store
	now     func() time.Time
	log     *slog.Logger
	quota   int
}

// New returns a Service over o (an *objstore.GCS) and ix (an *index.DB).
func New(o objects, ix store, opts Options) *Service {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Quota <= 0 {
		opts.Quota = DefaultQuota
	}
	return &Service{objects: o, index: ix, now: opts.Now, log: opts.Logger.With("component", "holds"), quota: opts.Quota}
}

// MaxHoldFor bounds how far ahead a hold's end may be.
const MaxHoldFor = 400 * 24 * time.Hour

// maxBy bounds the recorded holder, in bytes.
const maxBy = 256

// Spec is what a hold asks for besides the trace.
type Spec struct {
	// Reason replaces the recorded reason unless it is empty.
	Reason string
	// Until ends the hold by itself at that time (GC releases it then, as
	// a release does); For ends it that long after now. At most one of
	// Until, For and NoEnd may be set; none: a new hold has no end and a
	// repeated one keeps its end. The end must be in the future and at
	// most MaxHoldFor ahead.
	Until time.Time
	For   time.Duration
	// NoEnd removes a repeated hold's end.
	NoEnd bool
	// By is who holds it (a token's subject), recorded with the first
	// hold; longer than 256 bytes it is cut.
	By string
}

// Hold holds a trace with a reason and no end: HoldWith with Spec{Reason:
// reason}.
func (s *Service) Hold(ctx context.Context, c traces.CanvasID, id traces.TraceID, reason string) (Hold, error) {
	return s.HoldWith(ctx, c, id, Spec{Reason: reason})
}

// HoldWith holds a trace: the index records it (now, sp.By, sp.Reason, its
// end) with an operation token, then GCS's temporaryHold goes on the trace
// object and each of its layers, then the token goes. Holding a held trace
// again is harmless; it keeps the original time and holder, a non-empty
// reason replaces the recorded one, and an end given (or NoEnd) replaces
// the recorded end. A trace unknown to the index wraps traces.ErrNotFound;
// so does one whose object is gone, after its index rows are removed. A
// canvas at its quota wraps traces.ErrExhausted. A reason over MaxReason
// bytes, or an end that is past, too far ahead or given twice, is a
// *traces.FieldError. Backend faults wrap traces.ErrUnavailable; what a
// failed call left undone, GC's repair step completes (the hold stands),
// and retrying is always safe.
func (s *Service) HoldWith(ctx context.Context, c traces.CanvasID, id traces.TraceID, sp Spec) (Hold, error) {
	if err := checkReason(sp.Reason); err != nil {
		return Hold{}, err
	}
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	now := s.now().UTC()
	spec, err := sp.index(now)
	if err != nil {
		return Hold{}, err
	}
	h, err := s.index.BeginHold(ctx, c, id, spec, now, s.quota)
	if err != nil {
		return Hold{}, notFound(fmt.Errorf("hold %s: %w", id, err), id)
	}
	if err := s.setHolds(ctx, c, id, h.Generation, h.Layers, true); err != nil {
		return Hold{}, notFound(fmt.Errorf("hold %s: %w", id, err), id)
	}
	// A release that ran meanwhile may have come before our patches: then
	// the token stays and the repair step releases the objects again.
	if _, err := s.index.EndOp(ctx, c, id, h.Token, true); err != nil {
		s.log.Warn("end hold", "canvas_id", c, "trace_id", id, "err", err)
	}
	s.log.Debug("trace held", "canvas_id", c, "trace_id", id)
	return h.Hold, nil
}

// index checks sp's end at now and returns what the index records.
func (sp Spec) index(now time.Time) (index.HoldSpec, error) {
	h := index.HoldSpec{Reason: sp.Reason, By: sp.By}
	if len(h.By) > maxBy {
		h.By = strings.ToValidUTF8(h.By[:maxBy], "")
	}
	n := 0
	for _, set := range []bool{!sp.Until.IsZero(), sp.For != 0, sp.NoEnd} {
		if set {
			n++
		}
	}
	switch {
	case n > 1:
		return h, traces.Invalid("until", "give one end: a time, a duration or none")
	case sp.NoEnd:
		h.SetUntil = true
		return h, nil
	case sp.For != 0:
		if sp.For < 0 || sp.For > MaxHoldFor {
			return h, traces.Invalid("until", "a duration must be positive and at most %s", formatDays(MaxHoldFor))
		}
		sp.Until = now.Add(sp.For)
	case sp.Until.IsZero():
		return h, nil
	}
	switch {
	case !sp.Until.After(now):
		return h, traces.Invalid("until", "%s is not in the future", sp.Until.UTC().Format(time.RFC3339))
	case sp.Until.Sub(now) > MaxHoldFor:
		return h, traces.Invalid("until", "%s is more than %s ahead", sp.Until.UTC().Format(time.RFC3339), formatDays(MaxHoldFor))
	}
	h.SetUntil, h.Until = true, sp.Until.UTC()
	return h, nil
}

func formatDays(d time.Duration) string { return fmt.Sprintf("%d days", d/(24*time.Hour)) }

// notFound gives a not-found error its public message.
func notFound(err error, id traces.TraceID) error {
	return traces.PublicIf(err, traces.ErrNotFound, "trace %s not found", id)
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

// setHolds brings the trace object and layers 1..layers to held, trace
// object first. A missing layer expired or was never written: nothing to
// keep. A missing trace object takes its rows (generation gen) with it and
// wraps traces.ErrNotFound. Releasing also moves customTime to now.
func (s *Service) setHolds(ctx context.Context, c traces.CanvasID, id traces.TraceID, gen int64, layers int, held bool) error {
	now := s.now().UTC().Truncate(time.Second) // what GCS stores as customTime
	err := s.setHold(ctx, traces.TraceKey(c, id), held, now)
	if errors.Is(err, traces.ErrNotFound) {
		return s.gone(ctx, c, id, gen, err)
	}
	if err != nil {
		return err
	}
	for n := 1; n <= layers; n++ {
		if err := s.setHold(ctx, traces.LayerKey(c, id, n), held, now); err != nil && !errors.Is(err, traces.ErrNotFound) {
			return err
		}
	}
	return nil
}

func (s *Service) setHold(ctx context.Context, key string, held bool, now time.Time) error {
	if held {
		_, err := s.objects.SetTemporaryHold(ctx, key, true, time.Time{})
		return err
	}
	return s.releaseObject(ctx, key, now)
}

// gone removes the index rows of a trace whose object is gone (a lost
// deletion notification) and returns notFound, which wraps ErrNotFound.
func (s *Service) gone(ctx context.Context, c traces.CanvasID, id traces.TraceID, gen int64, notFound error) error {
	if _, err := s.index.Remove(ctx, c, id, gen); err != nil {
		return fmt.Errorf("remove stale rows: %w", err)
	}
	return notFound
}

// Release releases a trace's hold: the index records it with an operation
// token, then temporaryHold=false and customTime=now go on the trace object
// and each layer in one PATCH each, then the index moves custom_time to now
// and the token goes. The trace is kept a full retention period from now
// and then follows the normal policy. Releasing a trace that is not held
// changes nothing (its retention is not renewed), unless an operation on it
// is unfinished: then any of its objects still held is released as above
// (Conform), so a release retried after its first try died midway is
// complete when it returns. Errors as for Hold,
// without the quota; what a failed call left undone, the repair step
// completes (the release stands).
func (s *Service) Release(ctx context.Context, c traces.CanvasID, id traces.TraceID) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	r, err := s.index.BeginRelease(ctx, c, id)
	if err != nil {
		return notFound(fmt.Errorf("release %s: %w", id, err), id)
	}
	if r.Unfinished {
		// Not held in the index, but an operation is unfinished: perhaps
		// this very release, retried after its process died between the
		// index and the objects. What the caller is told must be true when
		// it returns, so the objects are brought to the index's state now
		// rather than by the repair step minutes later.
		if err := s.Conform(ctx, c, id); err != nil {
			return notFound(fmt.Errorf("release %s: %w", id, err), id)
		}
		return nil
	}
	return s.release(ctx, c, id, r)
}

// ReleaseEnded releases a trace's hold if its end has come (at or before
// now), as Release does: the trace gets a full retention period from now.
// A hold extended or made endless meanwhile, or gone, stays as it is
// (released false). GC calls it for the holds index.DB.EndedHolds finds.
// Errors as for Release.
func (s *Service) ReleaseEnded(ctx context.Context, c traces.CanvasID, id traces.TraceID) (released bool, err error) {
	r, err := s.index.BeginExpire(ctx, c, id, s.now().UTC())
	if err != nil {
		return false, notFound(fmt.Errorf("release ended hold of %s: %w", id, err), id)
	}
	if err := s.release(ctx, c, id, r); err != nil {
		return false, err
	}
	return r.Held, nil
}

// release carries out a release BeginRelease or BeginExpire recorded.
func (s *Service) release(ctx context.Context, c traces.CanvasID, id traces.TraceID, r index.Releasing) error {
	if !r.Held {
		return nil
	}
	now := s.now().UTC().Truncate(time.Second)
	if err := s.setHolds(ctx, c, id, r.Generation, r.Layers, false); err != nil {
		return notFound(fmt.Errorf("release %s: %w", id, err), id)
	}
	if _, err := s.index.EndRelease(ctx, c, id, r.Token, now); err != nil {
		s.log.Warn("end release", "canvas_id", c, "trace_id", id, "err", err)
	}
	s.log.Debug("trace released", "canvas_id", c, "trace_id", id)
	return nil
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

// Conform brings a trace's objects to the hold its index row records, with
// an operation token of its own: held, the trace object and its layers are
// held; not held, any of them still held is released (customTime renewed,
// as a release does). GC's repair step calls it for traces an operation
// left half done. If a hold or release changes the row meanwhile, the token
// stays for the next repair. A trace not indexed, or whose object is gone,
// wraps traces.ErrNotFound (its rows are removed). Backend faults wrap
// traces.ErrUnavailable. Safe for concurrent use.
func (s *Service) Conform(ctx context.Context, c traces.CanvasID, id traces.TraceID) error {
	ctx, cancel := context.WithTimeout(ctx, OpTimeout)
	defer cancel()
	rec, tok, err := s.index.BeginOp(ctx, c, id)
	if err != nil {
		return fmt.Errorf("conform holds of %s: %w", id, err)
	}
	if err := s.conform(ctx, rec); err != nil {
		return fmt.Errorf("conform holds of %s: %w", id, err)
	}
	if _, err := s.index.EndOp(ctx, c, id, tok, rec.Held); err != nil {
		return fmt.Errorf("conform holds of %s: %w", id, err)
	}
	return nil
}

// conform patches what disagrees with rec.Held. Holding is idempotent, so
// it patches every object; releasing looks first, because a release also
// renews customTime.
func (s *Service) conform(ctx context.Context, rec traces.Record) error {
	if rec.Held {
		return s.setHolds(ctx, rec.Canvas, rec.ID, rec.Generation, rec.Layers, true)
	}
	now := s.now().UTC().Truncate(time.Second)
	for n := 0; n <= rec.Layers; n++ {
		key := traces.TraceKey(rec.Canvas, rec.ID)
		if n > 0 {
			key = traces.LayerKey(rec.Canvas, rec.ID, n)
		}
		info, err := s.objects.Stat(ctx, key)
		switch {
		case n == 0 && errors.Is(err, traces.ErrNotFound):
			return s.gone(ctx, rec.Canvas, rec.ID, rec.Generation, err)
		case errors.Is(err, traces.ErrNotFound):
			continue
		case err != nil:
			return err
		case info.TemporaryHold:
			if err := s.releaseObject(ctx, key, now); err != nil && !errors.Is(err, traces.ErrNotFound) {
				return err
			}
		}
	}
	return nil
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
