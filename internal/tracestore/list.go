package tracestore

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"time"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// Bounds of the list routes: a toplevel's list (default 10, at most 100),
// the toplevels of one batch, and a search page (default 50, at most
// 1000).
const (
	DefaultListLimit   = 10
	MaxListLimit       = 100
	MaxBatchTLIDs      = 1000
	DefaultSearchLimit = 50
	MaxSearchLimit     = 1000
)

// listIndex is what listing needs from the index.
type listIndex interface {
	RecentKept(ctx context.Context, c traces.CanvasID, tlid traces.TLID, limit int, r index.Retention) ([]traces.Summary, error)
	RecentManyKept(ctx context.Context, c traces.CanvasID, tlids []traces.TLID, limit int, r index.Retention) (map[traces.TLID][]traces.Summary, error)
	Search(ctx context.Context, c traces.CanvasID, q index.Range, r index.Retention) ([]traces.Summary, error)
	GetKept(ctx context.Context, c traces.CanvasID, id traces.TraceID, r index.Retention) (traces.Record, traces.Kept, error)
}

// Policy is the retention policy GC applies now, which listings describe
// (why each trace is kept, until when); *ttl.GC implements it.
type Policy interface {
	// CurrentPolicy returns the retention GCS may apply now (the strictest
	// during a change) and the global keep-N (a canvas's own keep is the
	// index's to read).
	CurrentPolicy(ctx context.Context) (retention time.Duration, keep int)
}

// judging is what the index needs to judge listed traces now.
func (s *Service) judging(ctx context.Context) index.Retention {
	ret, keep := s.o.Retention, s.o.Keep
	if s.o.Policy != nil {
		ret, keep = s.o.Policy.CurrentPolicy(ctx)
	}
	return index.Retention{Period: ret, Keep: keep, Now: s.now()}
}

// Recent lists the newest traces that touched tlid, newest first, each
// judged (traces.Kept).
func (s *Service) Recent(ctx context.Context, c traces.CanvasID, tlid traces.TLID, limit int) ([]traces.Summary, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	return s.index.RecentKept(ctx, c, tlid, limit, s.judging(ctx))
}

// RecentMany lists the newest traces of many toplevels in one round trip,
// each judged (traces.Kept).
func (s *Service) RecentMany(ctx context.Context, c traces.CanvasID, tlids []traces.TLID, limit int) (map[traces.TLID][]traces.Summary, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	if len(tlids) > MaxBatchTLIDs {
		return nil, traces.TooLarge("tlids", MaxBatchTLIDs)
	}
	return s.index.RecentManyKept(ctx, c, tlids, limit, s.judging(ctx))
}

func checkLimit(limit int) error {
	if limit < 1 || limit > MaxListLimit {
		return traces.Invalid("limit", "must be between 1 and %d", MaxListLimit)
	}
	return nil
}

// SearchQuery is a search of one canvas's traces. The time range is on
// the time embedded in each trace ID (UUIDv7: its Unix milliseconds, within
// a day of the trace's timestamp), at millisecond precision: a trace is in
// range when Since <= t < Until. Every filter narrows one range of trace
// IDs, so a page is one index range scan whatever the canvas holds.
type SearchQuery struct {
	Since, Until time.Time // zero: unbounded
	// TLID, if set, keeps only the traces that touched that toplevel.
	TLID *traces.TLID
	// Prefix keeps the trace IDs that start with these hex digits (dashes
	// are ignored, any case).
	Prefix string
	// Limit is the page size: 0 is DefaultSearchLimit, at most
	// MaxSearchLimit.
	Limit int
	// Cursor continues after the page that returned it as NextCursor.
	Cursor string
}

// SearchPage is one page of a search, newest first.
type SearchPage struct {
	Traces []traces.Summary
	// NextCursor continues the search; "" on the last page.
	NextCursor string
}

// Search lists a canvas's traces newest first, filtered by q, each judged
// (traces.Kept). Paging is keyset on the trace ID: traces saved meanwhile
// never shift a page (a new trace is newer than every page already read,
// unless its caller backdated it), so paging to the end returns every trace
// that stayed, once. A bad parameter is a *traces.FieldError naming it
// (limit, since, prefix, cursor). Errors wrap traces.ErrUnavailable when
// the index cannot be reached.
func (s *Service) Search(ctx context.Context, c traces.CanvasID, q SearchQuery) (SearchPage, error) {
	rg, err := searchRange(q)
	if err != nil {
		return SearchPage{}, err
	}
	limit := rg.Limit
	rg.Limit++ // one more tells whether a next page exists
	list, err := s.index.Search(ctx, c, rg, s.judging(ctx))
	if err != nil {
		return SearchPage{}, err
	}
	page := SearchPage{Traces: list}
	if len(list) > limit {
		page.Traces = list[:limit:limit]
		page.NextCursor = encodeCursor(list[limit-1].ID)
	}
	return page, nil
}

// searchRange turns q into one range of trace IDs.
func searchRange(q SearchQuery) (index.Range, error) {
	rg := index.Range{High: maxID, TLID: q.TLID, Limit: q.Limit}
	switch {
	case rg.Limit == 0:
		rg.Limit = DefaultSearchLimit
	case rg.Limit < 1 || rg.Limit > MaxSearchLimit:
		return rg, traces.Invalid("limit", "must be between 1 and %d", MaxSearchLimit)
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && q.Since.After(q.Until) {
		return rg, traces.Invalid("since", "%s is after until %s", q.Since.UTC().Format(time.RFC3339Nano), q.Until.UTC().Format(time.RFC3339Nano))
	}
	empty := false
	if !q.Since.IsZero() {
		rg.Low = higher(rg.Low, idAt(q.Since, 0x00))
	}
	if !q.Until.IsZero() {
		// Below the first ID of Until's millisecond.
		last, ok := before(idAt(q.Until, 0x00))
		rg.High, empty = lower(rg.High, last), empty || !ok
	}
	if q.Prefix != "" {
		lo, hi, err := prefixRange(q.Prefix)
		if err != nil {
			return rg, err
		}
		rg.Low, rg.High = higher(rg.Low, lo), lower(rg.High, hi)
	}
	if q.Cursor != "" {
		after, err := decodeCursor(q.Cursor)
		if err != nil {
			return rg, err
		}
		last, ok := before(after)
		rg.High, empty = lower(rg.High, last), empty || !ok
	}
	if empty {
		rg.Low, rg.High = maxID, traces.TraceID{} // Low after High: no rows, no query
	}
	return rg, nil
}

var maxID = traces.TraceID{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// idAt is the trace ID whose 48-bit time is t's Unix milliseconds (clamped
// to the range a UUIDv7 holds) and whose other bytes are fill.
func idAt(t time.Time, fill byte) traces.TraceID {
	ms := max(min(t.UnixMilli(), 1<<48-1), 0)
	var id traces.TraceID
	for i := range id {
		id[i] = fill
	}
	for i := 5; i >= 0; i-- {
		id[i], ms = byte(ms), ms>>8
	}
	return id
}

// before is the ID just below id; ok is false if none is (id is zero).
func before(id traces.TraceID) (traces.TraceID, bool) {
	for i := 15; i >= 0; i-- {
		if id[i] > 0 {
			id[i]--
			return id, true
		}
		id[i] = 0xff
	}
	return traces.TraceID{}, false
}

func higher(a, b traces.TraceID) traces.TraceID {
	if bytes.Compare(a[:], b[:]) >= 0 {
		return a
	}
	return b
}

func lower(a, b traces.TraceID) traces.TraceID {
	if bytes.Compare(a[:], b[:]) <= 0 {
		return a
	}
	return b
}

// prefixRange is the range of IDs starting with the hex digits of p.
func prefixRange(p string) (lo, hi traces.TraceID, err error) {
	digits := strings.ReplaceAll(p, "-", "")
	if digits == "" || len(digits) > 32 || len(p) > 36 {
		return lo, hi, traces.Invalid("prefix", "must be 1 to 32 hex digits of a trace ID (dashes allowed)")
	}
	for i := range 32 {
		var d byte = 0x0
		var e byte = 0xf
		if i < len(digits) {
			v, ok := hexDigit(digits[i])
			if !ok {
				return lo, hi, traces.Invalid("prefix", "%q is not a hex digit: want the start of a trace ID such as 0190a1b2-c3", digits[i])
			}
			d, e = v, v
		}
		lo[i/2] |= d << (4 * (1 - i%2))
		hi[i/2] |= e << (4 * (1 - i%2))
	}
	return lo, hi, nil
}

func hexDigit(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// The cursor is opaque to callers: base64url (no padding) of a version
// byte and the last trace ID of the page.
const cursorVersion = 1

func encodeCursor(id traces.TraceID) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{cursorVersion}, id[:]...))
}

func decodeCursor(s string) (traces.TraceID, error) {
	bad := traces.Invalid("cursor", "not a cursor this server issued: pass nextCursor from the previous page as it is")
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) != 17 || b[0] != cursorVersion {
		return traces.TraceID{}, bad
	}
	id := traces.TraceID(b[1:])
	if _, err := traces.ParseTraceID(id.String()); err != nil {
		return traces.TraceID{}, bad
	}
	return id, nil
}

// encodeCursorBytes encodes raw cursor bytes (tests forge cursors with it).
func encodeCursorBytes(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
