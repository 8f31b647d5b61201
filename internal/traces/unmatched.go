package traces

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// UnmatchedEntry is an unmatched request ("404") in the index: its route,
// its ID (also its object name's last part) and when it arrived.
type UnmatchedEntry struct {
	Canvas                 CanvasID
	ID                     TraceID
	Module, Path, Modifier string
	Timestamp              time.Time
}

// unmatchedIndex is what the 404s need from the index.
type unmatchedIndex interface {
	// PutUnmatched indexes one unmatched request (a repeat changes nothing).
	PutUnmatched(ctx context.Context, e UnmatchedEntry) error
	// ListUnmatched returns the newest entry per route among those that
	// arrived at or after since, at most limit routes.
	ListUnmatched(ctx context.Context, c CanvasID, since time.Time, limit int) ([]UnmatchedEntry, error)
	// DismissUnmatched removes every entry of one route.
	DismissUnmatched(ctx context.Context, c CanvasID, module, path, modifier string) (int, error)
}

// MaxUnmatchedRoutes bounds the routes ListUnmatched returns.
const MaxUnmatchedRoutes = 1000

// SaveUnmatched stores a request that hit no handler: an object at
// UnmatchedKey(c, id) with a new UUIDv7 id and customTime = now (GC never
// renews it, so the lifecycle rule deletes it after the retention period),
// then its index row. It returns the new entry. Backend faults wrap
// ErrUnavailable. Safe for concurrent use.
func (s *Service) SaveUnmatched(ctx context.Context, c CanvasID, u Unmatched) (UnmatchedEntry, error) {
	now := s.now()
	e := UnmatchedEntry{
		Canvas: c, ID: NewTraceID(now), Module: u.Module, Path: u.Path, Modifier: u.Modifier,
		Timestamp: now.UTC().Truncate(time.Millisecond),
	}
	doc := AppendUnmatchedMsgpack(make([]byte, 0, 512), u)
	sum := sha256.Sum256(doc)
	body, err := compress(doc)
	if err != nil {
		return UnmatchedEntry{}, fmt.Errorf("compress unmatched request: %w", err)
	}
	key := UnmatchedKey(c, e.ID)
	if _, err := s.objects.Create(ctx, key, body, NewObject{
		ContentType: contentType, ContentEncoding: gzipEncoding, CustomTime: now.UTC().Truncate(time.Second),
		Metadata: map[string]string{metaFormat: FormatVersion, metaSHA256: hex.EncodeToString(sum[:])},
	}); err != nil {
		return UnmatchedEntry{}, fmt.Errorf("save %s: %w", key, err)
	}
	if err := s.index.PutUnmatched(ctx, e); err != nil {
		return UnmatchedEntry{}, fmt.Errorf("index %s: %w", key, err)
	}
	return e, nil
}

// ListUnmatched returns the most recent unmatched request of each (module,
// path, modifier) that arrived within the retention period before now,
// from the index alone. Older entries are not listed even while their rows
// remain (their objects expire by the lifecycle rule). Safe for concurrent
// use.
func (s *Service) ListUnmatched(ctx context.Context, c CanvasID) ([]UnmatchedEntry, error) {
	since := s.now().Add(-s.retention())
	list, err := s.index.ListUnmatched(ctx, c, since, MaxUnmatchedRoutes)
	if err != nil {
		return nil, fmt.Errorf("list unmatched of %s: %w", c, err)
	}
	return list, nil
}

func (s *Service) retention() time.Duration {
	if s.Retention <= 0 {
		return DefaultRetention
	}
	return s.Retention
}

// DismissUnmatched removes every unmatched request of one route from the
// listing (their objects expire by the lifecycle rule). module and path are
// required (ErrInvalid); dismissing a route with no entries is not an
// error. Safe for concurrent use.
func (s *Service) DismissUnmatched(ctx context.Context, c CanvasID, module, path, modifier string) error {
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
			return Invalid(f.name, "must be valid UTF-8 without NUL")
		}
	}
	switch {
	case module == "":
		return Invalid("module", "required")
	case len(module) > MaxModuleLen:
		return TooLarge("module", MaxModuleLen)
	case path == "":
		return Invalid("path", "required")
	case len(path) > MaxPathLen:
		return TooLarge("path", MaxPathLen)
	case len(modifier) > MaxModifierLen:
		return TooLarge("modifier", MaxModifierLen)
	}
	return nil
}

// PromoteUnmatched turns unmatched request id into a normal trace of the
// handler root (the user created a handler for it): the request's input is
// saved as a new trace (new ID, timestamp now, as Save does) and the
// request's route is dismissed. An unmatched request whose object is gone
// wraps ErrNotFound. A retry after success saves another trace (the first
// one is still listed under root). Safe for concurrent use.
func (s *Service) PromoteUnmatched(ctx context.Context, c CanvasID, id TraceID, root TLID) (Saved, error) {
	key := UnmatchedKey(c, id)
	raw, info, err := s.objects.Open(ctx, key)
	if err != nil {
		return Saved{}, fmt.Errorf("promote %s: %w", key, err)
	}
	doc := raw
	if info.ContentEncoding == gzipEncoding {
		if doc, err = decompress(raw); err != nil {
			return Saved{}, fmt.Errorf("promote %s: decompress: %w", key, err)
		}
	}
	lim := s.Limits
	lim.MaxBody = int64(len(doc))
	u, err := DecodeUnmatched(doc, false, lim)
	if err != nil {
		return Saved{}, fmt.Errorf("promote %s: %w", key, err)
	}
	saved, err := s.Save(ctx, c, &Trace{RootTLID: root, Input: u.Input})
	if err != nil {
		return Saved{}, fmt.Errorf("promote %s: %w", key, err)
	}
	if _, err := s.index.DismissUnmatched(ctx, c, u.Module, u.Path, u.Modifier); err != nil {
		return Saved{}, fmt.Errorf("promote %s: dismiss: %w", key, err)
	}
	return saved, nil
}
