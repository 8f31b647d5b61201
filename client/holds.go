package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

type holdJSON struct {
	TraceID TraceID   `json:"traceID"`
	Reason  string    `json:"reason"`
	HeldAt  time.Time `json:"heldAt"`
}

// Hold holds trace id so it never expires while held; reason is optional.
// Holding a held trace again is not an error. Errors: ErrNotFound,
// ErrExhausted (the canvas's hold quota), ErrInvalid, ErrUnavailable
// (also when the gateway runs without holds). Retried like Save.
func (c *Client) Hold(ctx context.Context, canvas CanvasID, id TraceID, reason string) (Hold, error) {
	var body []byte
	if reason != "" {
		body, _ = json.Marshal(struct {
			Reason string `json:"reason"`
		}{reason})
	}
	resp, err := c.do(ctx, request{method: http.MethodPut, path: tracePath(canvas, id) + "/hold",
		body: body, contentType: ctJSON, retry: true})
	if err != nil {
		return Hold{}, fmt.Errorf("hold %s: %w", id, err)
	}
	var h holdJSON
	if err := json.Unmarshal(resp.body, &h); err != nil {
		return Hold{}, fmt.Errorf("hold %s: decode: %w", id, err)
	}
	return Hold{ID: h.TraceID, Reason: h.Reason, HeldAt: h.HeldAt}, nil
}

// Release releases the hold of trace id: it gets a fresh full retention
// period from now. Errors: ErrNotFound, ErrInvalid, ErrUnavailable.
// Retried like Save.
func (c *Client) Release(ctx context.Context, canvas CanvasID, id TraceID) error {
	_, err := c.do(ctx, request{method: http.MethodDelete, path: tracePath(canvas, id) + "/hold", retry: true})
	if err != nil {
		return fmt.Errorf("release %s: %w", id, err)
	}
	return nil
}

// Holds lists the held traces of canvas. Errors: ErrInvalid,
// ErrUnavailable. Retried like Save.
func (c *Client) Holds(ctx context.Context, canvas CanvasID) ([]Hold, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: canvasPath(canvas) + "/holds", retry: true})
	if err != nil {
		return nil, fmt.Errorf("holds of %s: %w", canvas, err)
	}
	var out struct {
		Holds []holdJSON `json:"holds"`
	}
	if err := json.Unmarshal(resp.body, &out); err != nil {
		return nil, fmt.Errorf("holds of %s: decode: %w", canvas, err)
	}
	hs := make([]Hold, len(out.Holds))
	for i, h := range out.Holds {
		hs[i] = Hold{ID: h.TraceID, Reason: h.Reason, HeldAt: h.HeldAt}
	}
	return hs, nil
}
