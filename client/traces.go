package client

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Save stores a new trace in canvas (POST …/traces, msgpack body, gzip
// above WithGzipAbove; a direct upload to storage above
// WithDirectUploadAbove, see direct.go). When
// t.ID is empty Save first sets it to a fresh UUIDv7 (and leaves Timestamp
// to be derived from it), so every try sends the identical document: the
// gateway answers a repeat 200 instead of storing a second trace, and
// calling Save again with the same *Trace after an error is just as safe.
// Tries are repeated on 503, 429 and network errors with jittered
// exponential backoff until the client's attempts are used up or ctx ends.
// Errors: ErrInvalid, ErrTooLarge, ErrConflict (another trace has this ID),
// ErrUnauthenticated, ErrPermission, ErrUnavailable, ErrExhausted. Do not
// share t between concurrent calls while its ID is empty.
func (c *Client) Save(ctx context.Context, canvas CanvasID, t *Trace) (Saved, error) {
	if t.ID == "" {
		now := t.Timestamp
		if now.IsZero() {
			now = time.Now()
		}
		t.ID = NewTraceID(now)
	}
	doc := canonical(t)
	body, err := encodeTrace(&doc)
	if err != nil {
		return Saved{}, err
	}
	req := request{method: http.MethodPost, path: canvasPath(canvas) + "/traces",
		body: body, contentType: ctMsgpack, retry: true}
	if c.gzipMin >= 0 && len(body) >= c.gzipMin || c.directMin > 0 && int64(len(body)) >= c.directMin {
		req.body, req.encoding = gzipBytes(body), "gzip"
	}
	if c.directMin > 0 && req.encoding != "" && int64(len(req.body)) >= c.directMin {
		s, err := c.saveDirect(ctx, canvas, t.ID, body, req.body)
		if !errors.Is(err, errDirectOff) {
			return s, err
		}
	}
	resp, err := c.do(ctx, req)
	if err != nil {
		return Saved{}, fmt.Errorf("save trace %s: %w", t.ID, err)
	}
	s, err := decodeSaved(resp.body)
	if err != nil {
		return Saved{}, fmt.Errorf("save trace %s: %w", t.ID, err)
	}
	s.Created = resp.status == http.StatusCreated
	return s, nil
}

// canonical is t as the gateway stores it, so that the document Save sends
// is byte for byte the one the gateway would store (it then need not
// encode and compress it again): the timestamp, when empty, is the ID's
// time; a timestamp is UTC in whole milliseconds; TLIDs are deduplicated
// in first-seen order, the root appended when missing. t itself is not
// changed.
func canonical(t *Trace) Trace {
	d := *t
	if d.Timestamp.IsZero() {
		d.Timestamp = d.ID.Time()
	}
	if !d.Timestamp.IsZero() {
		d.Timestamp = d.Timestamp.UTC().Truncate(time.Millisecond)
	}
	seen := false
	dup := false
	for i, id := range d.TLIDs {
		seen = seen || id == d.RootTLID
		for _, o := range d.TLIDs[:i] {
			dup = dup || o == id
		}
		if dup {
			break
		}
	}
	if dup || !seen {
		out := make([]TLID, 0, len(d.TLIDs)+1)
		for _, id := range d.TLIDs {
			if !slices.Contains(out, id) {
				out = append(out, id)
			}
		}
		if !slices.Contains(out, d.RootTLID) {
			out = append(out, d.RootTLID)
		}
		d.TLIDs = out
	}
	return d
}

var gzipWriters = sync.Pool{New: func() any {
	w, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return w
}}

// gzipBytes compresses b as the gateway's storage format does (BestSpeed).
func gzipBytes(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b)/2 + 64)
	w := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(w)
	w.Reset(&buf)
	_, _ = w.Write(b) // a bytes.Buffer does not fail
	_ = w.Close()
	return buf.Bytes()
}

// EncodeTrace returns the msgpack document Save sends for t (t.ID as it
// is: Save fills an empty one first). A malformed t.ID wraps ErrInvalid.
func EncodeTrace(t *Trace) ([]byte, error) {
	d := canonical(t)
	return encodeTrace(&d)
}

func encodeTrace(t *Trace) ([]byte, error) { return appendTrace(make([]byte, 0, estimate(t)), t) }

// estimate is a capacity that usually holds the encoded trace.
func estimate(t *Trace) int {
	n := 128 + 10*len(t.TLIDs)
	for _, v := range t.Input {
		n += 8 + len(v.Name) + len(v.Value)
	}
	for _, r := range t.FunctionResults {
		n += 80 + len(r.FnName) + len(r.ArgHash) + len(r.Value)
	}
	return n
}

type savedJSON struct {
	TraceID    TraceID `json:"traceID"`
	Generation int64   `json:"generation,string"`
}

func decodeSaved(b []byte) (Saved, error) {
	var s savedJSON
	if err := json.Unmarshal(b, &s); err != nil {
		return Saved{}, fmt.Errorf("decode response: %w", err)
	}
	return Saved{ID: s.TraceID, Generation: s.Generation}, nil
}

// Get reads a trace with all its layers merged, and the generation of its
// object (the ETag, for Replace's ifGeneration). Errors: ErrNotFound,
// ErrInvalid (a malformed ID), ErrUnauthenticated, ErrPermission,
// ErrUnavailable. Retried like Save.
func (c *Client) Get(ctx context.Context, canvas CanvasID, id TraceID) (*Trace, int64, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: tracePath(canvas, id), accept: ctMsgpack, retry: true})
	if err != nil {
		return nil, 0, fmt.Errorf("get trace %s: %w", id, err)
	}
	t, err := decodeTrace(resp.body)
	if err != nil {
		return nil, 0, fmt.Errorf("get trace %s: decode: %w", id, err)
	}
	gen, _ := strconv.ParseInt(strings.Trim(resp.header.Get("ETag"), `"`), 10, 64)
	return t, gen, nil
}

// GetKept is Get that also says why the trace is still stored and until
// when (the gateway's X-Kept-Because, X-Latest-For and X-Expires-After
// headers). Errors as Get.
func (c *Client) GetKept(ctx context.Context, canvas CanvasID, id TraceID) (*Trace, int64, Kept, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: tracePath(canvas, id), accept: ctMsgpack, retry: true})
	if err != nil {
		return nil, 0, Kept{}, fmt.Errorf("get trace %s: %w", id, err)
	}
	t, err := decodeTrace(resp.body)
	if err != nil {
		return nil, 0, Kept{}, fmt.Errorf("get trace %s: decode: %w", id, err)
	}
	gen, _ := strconv.ParseInt(strings.Trim(resp.header.Get("ETag"), `"`), 10, 64)
	k, err := keptOf(resp.header)
	if err != nil {
		return nil, 0, Kept{}, fmt.Errorf("get trace %s: %w", id, err)
	}
	return t, gen, k, nil
}

// keptOf reads the kept headers of a read.
func keptOf(h http.Header) (Kept, error) {
	k := Kept{Because: []string{}}
	for _, w := range strings.Split(h.Get("X-Kept-Because"), ",") {
		if w = strings.TrimSpace(w); w != "" {
			k.Because = append(k.Because, w)
		}
	}
	for _, v := range strings.Split(h.Get("X-Latest-For"), ",") {
		if v = strings.TrimSpace(v); v == "" {
			continue
		}
		u, ok := parseDecimal([]byte(v))
		if !ok {
			return Kept{}, invalid("X-Latest-For", "not a list of tlids")
		}
		k.LatestFor = append(k.LatestFor, TLID(u))
	}
	if v := h.Get("X-Expires-After"); v != "" {
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			return Kept{}, invalid("X-Expires-After", "not an RFC 3339 time")
		}
		k.ExpiresAfter = t
	}
	return k, nil
}

// Search lists canvas's traces newest first, a page at a time, filtered by
// q: pass the page's NextCursor as q.Cursor for the next one, until it is
// "". Errors: ErrInvalid (a bad filter or cursor), ErrUnauthenticated,
// ErrPermission, ErrUnavailable. Retried like Save.
func (c *Client) Search(ctx context.Context, canvas CanvasID, q SearchQuery) (SearchPage, error) {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.TLID != 0 {
		v.Set("tlid", strconv.FormatUint(uint64(q.TLID), 10))
	}
	if q.Prefix != "" {
		v.Set("prefix", q.Prefix)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	resp, err := c.do(ctx, request{method: http.MethodGet, path: canvasPath(canvas) + "/traces", query: v, retry: true, accept: ctMsgpack})
	if err != nil {
		return SearchPage{}, fmt.Errorf("search traces of %s: %w", canvas, err)
	}
	p, err := decodeSearch(resp.body)
	if err != nil {
		return SearchPage{}, fmt.Errorf("search traces of %s: decode: %w", canvas, err)
	}
	return p, nil
}

// Replace replaces the whole trace id (the editor's "execute handler"),
// dropping its layers. ifGeneration, when non-zero, must be the object's
// live generation (as Get returns it), else ErrPrecondition; a held trace
// is also ErrPrecondition. t.ID is ignored: the path names the trace. Not
// retried. Errors also: ErrNotFound, ErrInvalid, ErrUnavailable.
func (c *Client) Replace(ctx context.Context, canvas CanvasID, id TraceID, t *Trace, ifGeneration int64) (Saved, error) {
	cp := *t
	cp.ID = id
	body, err := encodeTrace(&cp)
	if err != nil {
		return Saved{}, err
	}
	resp, err := c.do(ctx, request{method: http.MethodPut, path: tracePath(canvas, id), body: body,
		contentType: ctMsgpack, ifMatch: ifGeneration})
	if err != nil {
		return Saved{}, fmt.Errorf("replace trace %s: %w", id, err)
	}
	s, err := decodeSaved(resp.body)
	if err != nil {
		return Saved{}, fmt.Errorf("replace trace %s: %w", id, err)
	}
	s.Created = true
	return s, nil
}

// AddFunctionResults adds a layer of function results to trace id (the
// editor's "execute function"): later layers win for the same (tlid,
// exprID, fnName, argHash). tlids are the toplevels the layer touched. Not
// retried (a repeat would add a second layer). Errors: ErrNotFound,
// ErrInvalid, ErrTooLarge, ErrUnavailable.
func (c *Client) AddFunctionResults(ctx context.Context, canvas CanvasID, id TraceID, tlids []TLID, results []FunctionResult) (Layer, error) {
	body := appendLayer(nil, tlids, results)
	resp, err := c.do(ctx, request{method: http.MethodPost, path: tracePath(canvas, id) + "/function-results",
		body: body, contentType: ctMsgpack})
	if err != nil {
		return Layer{}, fmt.Errorf("add function results to %s: %w", id, err)
	}
	var l struct {
		TraceID TraceID `json:"traceID"`
		Layer   int     `json:"layer"`
	}
	if err := json.Unmarshal(resp.body, &l); err != nil {
		return Layer{}, fmt.Errorf("add function results to %s: decode: %w", id, err)
	}
	return Layer{ID: l.TraceID, N: l.Layer}, nil
}

// Recent lists the newest traces that touched tlid, newest first; limit 0
// means the gateway's default (10), at most 100. Errors: ErrInvalid,
// ErrUnauthenticated, ErrPermission, ErrUnavailable. Retried like Save.
func (c *Client) Recent(ctx context.Context, canvas CanvasID, tlid TLID, limit int) ([]Summary, error) {
	var q url.Values
	if limit != 0 {
		q = url.Values{"limit": {strconv.Itoa(limit)}}
	}
	path := canvasPath(canvas) + "/toplevels/" + strconv.FormatUint(uint64(tlid), 10) + "/traces"
	resp, err := c.do(ctx, request{method: http.MethodGet, path: path, query: q, retry: true, accept: ctMsgpack})
	if err != nil {
		return nil, fmt.Errorf("recent traces of %d: %w", tlid, err)
	}
	list, err := decodeTraceList(resp.body)
	if err != nil {
		return nil, fmt.Errorf("recent traces of %d: decode: %w", tlid, err)
	}
	return list, nil
}

// RecentMany lists the newest traces of many toplevels in one call (at
// most 1000 tlids); every requested tlid is a key of the result, with an
// empty list when it has no traces. limit 0 means the default (10).
// Errors as Recent.
func (c *Client) RecentMany(ctx context.Context, canvas CanvasID, tlids []TLID, limit int) (map[TLID][]Summary, error) {
	req := struct {
		TLIDs []string `json:"tlids"`
		Limit int      `json:"limit,omitempty"`
	}{TLIDs: make([]string, len(tlids)), Limit: limit}
	for i, t := range tlids {
		req.TLIDs[i] = strconv.FormatUint(uint64(t), 10)
	}
	body, _ := json.Marshal(req) // strings and an int: cannot fail
	resp, err := c.do(ctx, request{method: http.MethodPost, path: canvasPath(canvas) + "/recent-traces",
		body: body, contentType: ctJSON, retry: true, accept: ctMsgpack})
	if err != nil {
		return nil, fmt.Errorf("recent traces of %d toplevels: %w", len(tlids), err)
	}
	m := make(map[TLID][]Summary, len(tlids))
	for _, t := range tlids {
		m[t] = []Summary{}
	}
	if err := decodeToplevels(resp.body, m); err != nil {
		return nil, fmt.Errorf("recent traces of %d toplevels: decode: %w", len(tlids), err)
	}
	return m, nil
}

// ForgetToplevel tells the gateway the toplevel tlid was deleted: its
// latest traces are no longer kept for it. Retried like Save. Errors:
// ErrInvalid, ErrUnavailable.
func (c *Client) ForgetToplevel(ctx context.Context, canvas CanvasID, tlid TLID) error {
	path := canvasPath(canvas) + "/toplevels/" + strconv.FormatUint(uint64(tlid), 10)
	if _, err := c.do(ctx, request{method: http.MethodDelete, path: path, retry: true}); err != nil {
		return fmt.Errorf("forget toplevel %d: %w", tlid, err)
	}
	return nil
}
