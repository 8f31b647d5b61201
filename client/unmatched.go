package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// SaveUnmatched records a request that hit no handler and returns the ID
// the gateway gave it. Not retried: each call records a new request.
// Errors: ErrInvalid, ErrTooLarge, ErrUnavailable.
func (c *Client) SaveUnmatched(ctx context.Context, canvas CanvasID, u Unmatched) (TraceID, error) {
	body := appendUnmatched(nil, u)
	resp, err := c.do(ctx, request{method: http.MethodPost, path: canvasPath(canvas) + "/unmatched-requests",
		body: body, contentType: ctMsgpack})
	if err != nil {
		return "", fmt.Errorf("save unmatched %s %s: %w", u.Module, u.Path, err)
	}
	return decodeTraceID(resp.body)
}

func decodeTraceID(b []byte) (TraceID, error) {
	var out struct {
		TraceID TraceID `json:"traceID"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return "", fmt.Errorf("decode response: %w", err)
	}
	return out.TraceID, nil
}

// Unmatched lists the most recent unmatched request of each (module,
// path, modifier) within the retention period. Retried like Save.
func (c *Client) Unmatched(ctx context.Context, canvas CanvasID) ([]UnmatchedEntry, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: canvasPath(canvas) + "/unmatched-requests", retry: true})
	if err != nil {
		return nil, fmt.Errorf("unmatched of %s: %w", canvas, err)
	}
	var out struct {
		Unmatched []struct {
			Module    string    `json:"module"`
			Path      string    `json:"path"`
			Modifier  string    `json:"modifier"`
			Timestamp time.Time `json:"timestamp"`
			TraceID   TraceID   `json:"traceID"`
		} `json:"unmatched"`
	}
	if err := json.Unmarshal(resp.body, &out); err != nil {
		return nil, fmt.Errorf("unmatched of %s: decode: %w", canvas, err)
	}
	list := make([]UnmatchedEntry, len(out.Unmatched))
	for i, e := range out.Unmatched {
		list[i] = UnmatchedEntry{Module: e.Module, Path: e.Path, Modifier: e.Modifier, Timestamp: e.Timestamp, ID: e.TraceID}
	}
	return list, nil
}

// DismissUnmatched removes every unmatched request of one route from the
// listing; dismissing a route with none is not an error. Retried like
// Save. Errors: ErrInvalid (module and path are required), ErrUnavailable.
func (c *Client) DismissUnmatched(ctx context.Context, canvas CanvasID, module, path, modifier string) error {
	q := url.Values{"module": {module}, "path": {path}, "modifier": {modifier}}
	_, err := c.do(ctx, request{method: http.MethodDelete, path: canvasPath(canvas) + "/unmatched-requests", query: q, retry: true})
	if err != nil {
		return fmt.Errorf("dismiss unmatched %s %s: %w", module, path, err)
	}
	return nil
}

// Promote turns unmatched request id into a normal trace of handler
// rootTLID (same input, new ID) and dismisses its route; it returns the new
// trace's ID. Not retried: a repeat saves another trace. Errors:
// ErrNotFound, ErrInvalid, ErrUnavailable.
func (c *Client) Promote(ctx context.Context, canvas CanvasID, id TraceID, rootTLID TLID) (TraceID, error) {
	body := []byte(`{"rootTLID":"` + strconv.FormatUint(uint64(rootTLID), 10) + `"}`)
	resp, err := c.do(ctx, request{method: http.MethodPost,
		path: canvasPath(canvas) + "/unmatched-requests/" + url.PathEscape(string(id)) + "/promote",
		body: body, contentType: ctJSON})
	if err != nil {
		return "", fmt.Errorf("promote %s: %w", id, err)
	}
	return decodeTraceID(resp.body)
}
