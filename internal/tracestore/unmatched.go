package tracestore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/tracegw/tracegw/internal/traces"
)

// unmatchedIndex is what the 404s need from the index.
type unmatchedIndex interface {
	// PutUnmatched indexes one unmatched request (a repeat changes nothing).
	PutUnmatched(ctx context.Context, e traces.UnmatchedEntry) error
	// ListUnmatched returns the newest entry per route among those that
	// arrived at or after since, newest first, the limit newest routes.
	ListUnmatched(ctx context.Context, c traces.CanvasID, since time.Time, limit int) ([]traces.UnmatchedEntry, error)
	// DismissUnmatched removes every entry of one route.
	DismissUnmatched(ctx context.Context, c traces.CanvasID, module, path, modifier string) (int, error)
}

// MaxUnmatchedRoutes bounds the routes ListUnmatched returns.
const MaxUnmatchedRoutes = 1000

// SaveUnmatched stores a request that hit no handler: an object at
// UnmatchedKey(c, id) with a new UUIDv7 id and customTime = now (GC never
// renews it, so the lifecycle rule deletes it after the retention period),
// then its index row. It returns the new entry. Backend faults wrap
// ErrUnavailable. Safe for concurrent use.
func (s *Service) SaveUnmatched(ctx context.Context, c traces.CanvasID, u traces.Unmatched) (traces.UnmatchedEntry, error) {
	now := s.now()
	e := traces.UnmatchedEntry{
		Canvas: c, ID: traces.NewTraceID(now), Module: u.Module, Path: u.Path, Modifier: u.Modifier,
		Timestamp: now.UTC().Truncate(time.Millisecond),
	}
	st, err := traces.Store(traces.AppendUnmatchedMsgpack(make([]byte, 0, 512), u))
	if err != nil {
		return traces.UnmatchedEntry{}, fmt.Errorf("save unmatched request: %w", err)
	}
	key := traces.UnmatchedKey(c, e.ID)
	info, err := s.objects.Create(ctx, key, st.Body, st.Object(now.UTC().Truncate(time.Second)))
	if err != nil {
		return traces.UnmatchedEntry{}, fmt.Errorf("save %s: %w", key, err)
	}
	if err := s.index.PutUnmatched(ctx, e); err != nil {
		if errors.Is(err, traces.ErrNotFound) { // the canvas was deleted
			if derr := s.objects.Delete(ctx, key, info.Generation); derr != nil && !errors.Is(derr, traces.ErrNotFound) {
				s.log.Warn("delete unmatched request of a deleted canvas", "key", key, "err", derr)
			}
		}
		return traces.UnmatchedEntry{}, traces.PublicIf(fmt.Errorf("index %s: %w", key, err), traces.ErrNotFound, "canvas %s was deleted", c)
	}
	return e, nil
}

// ListUnmatched returns the most recent unmatched request of each (module,
// path, modifier) that arrived within the retention period before now,
// newest first (at most MaxUnmatchedRoutes: the newest routes), from the
// index alone. Older entries are not listed even while their rows
// remain (their objects expire by the lifecycle rule). Safe for concurrent
// use.
func (s *Service) ListUnmatched(ctx context.Context, c traces.CanvasID) ([]traces.UnmatchedEntry, error) {
	since := s.now().Add(-s.retention())
	list, err := s.index.ListUnmatched(ctx, c, since, MaxUnmatchedRoutes)
	if err != nil {
		return nil, fmt.Errorf("list unmatched of %s: %w", c, err)
	}
	return list, nil
}

func (s *Service) retention() time.Duration { return s.o.Retention }

// DismissUnmatched removes every unmatched request of one route from the
// listing (their objects expire by the lifecycle rule). module and path are
// required (ErrInvalid); dismissing a route with no entries is not an
// error. Safe for concurrent use.
func (s *Service) DismissUnmatched(ctx context.Context, c traces.CanvasID, module, path, modifier string) error {
	if err := checkRoute(module, path, modifier); err != nil {
		return err
	}
	if _, err := s.index.DismissUnmatched(ctx, c, module, path, modifier); err != nil {
		return fmt.Errorf("dismiss unmatched %s %s %s: %w", module, modifier, path, err)
	}
	return nil
}

// checkRoute applies DecodeUnmatched's rules to a route given elsewhere (a
// query string): nothing that could not have been stored reaches the index.
func checkRoute(module, path, modifier string) error {
	for _, f := range [...]struct{ name, v string }{{"module", module}, {"path", path}, {"modifier", modifier}} {
		if !utf8.ValidString(f.v) || strings.IndexByte(f.v, 0) >= 0 {
			return traces.Invalid(f.name, "must be valid UTF-8 without NUL")
		}
	}
	switch {
	case module == "":
		return traces.Invalid("module", "required")
	case len(module) > traces.MaxModuleLen:
		return traces.TooLarge("module", traces.MaxModuleLen)
	case path == "":
		return traces.Invalid("path", "required")
	case len(path) > traces.MaxPathLen:
		return traces.TooLarge("path", traces.MaxPathLen)
	case len(modifier) > traces.MaxModifierLen:
		return traces.TooLarge("modifier", traces.MaxModifierLen)
	}
	return nil
}

// PromoteUnmatched turns unmatched request id into a normal trace of the
// handler root (the user created a handler for it): the request's input is
// saved as a new trace (new ID, timestamp now, as Save does) and the
// request's route is dismissed. An unmatched request whose object is gone
// wraps ErrNotFound. A retry after success saves another trace (the first
// one is still listed under root). Safe for concurrent use.
func (s *Service) PromoteUnmatched(ctx context.Context, c traces.CanvasID, id traces.TraceID, root traces.TLID) (Saved, error) {
	key := traces.UnmatchedKey(c, id)
	raw, _, err := s.objects.Open(ctx, key)
	if err != nil {
		return Saved{}, traces.PublicIf(fmt.Errorf("promote %s: %w", key, err), traces.ErrNotFound, "unmatched request %s not found (it expired)", id)
	}
	u, err := traces.DecodeStoredUnmatched(raw, s.o.Limits)
	if err != nil {
		return Saved{}, fmt.Errorf("promote %s: %w", key, err)
	}
	saved, err := s.Save(ctx, c, &traces.Trace{RootTLID: root, Input: u.Input})
	if err != nil {
		return Saved{}, fmt.Errorf("promote %s: %w", key, err)
	}
	if _, err := s.index.DismissUnmatched(ctx, c, u.Module, u.Path, u.Modifier); err != nil {
		return Saved{}, fmt.Errorf("promote %s: dismiss: %w", key, err)
	}
	return saved, nil
}
