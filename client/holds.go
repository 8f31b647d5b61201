package client

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

type holdJSON struct {
	TraceID TraceID    `json:"traceID"`
	Reason  string     `json:"reason"`
	HeldAt  time.Time  `json:"heldAt"`
	Until   *time.Time `json:"until"`
	HeldBy  string     `json:"heldBy"`
}

func (h holdJSON) hold() Hold {
	out := Hold{ID: h.TraceID, Reason: h.Reason, HeldAt: h.HeldAt, HeldBy: h.HeldBy}
	if h.Until != nil {
		out.Until = *h.Until
	}
	return out
}

// Hold holds trace id so it never expires while held; reason is optional.
// Holding a held trace again is not an error. Errors: ErrNotFound,
// ErrExhausted (the canvas's hold quota), ErrInvalid, ErrUnavailable
// (also when the gateway runs without holds). Retried like Save.
func (c *Client) Hold(ctx context.Context, canvas CanvasID, id TraceID, reason string) (Hold, error) {
	return c.HoldWith(ctx, canvas, id, HoldOptions{Reason: reason})
}

// HoldWith holds trace id with o's reason and end: at the end the gateway
// releases the hold by itself, as Release does. A repeated hold keeps its
// first time and holder; a reason given replaces the recorded one, an end
// given (or NoEnd) replaces the recorded end. Errors as Hold; an end that
// is past, more than 400 days ahead or given twice is ErrInvalid. Retried
// like Save.
func (c *Client) HoldWith(ctx context.Context, canvas CanvasID, id TraceID, o HoldOptions) (Hold, error) {
	req := map[string]any{}
	if o.Reason != "" {
		req["reason"] = o.Reason
	}
	switch {
	case o.NoEnd:
		req["until"] = nil
	case !o.Until.IsZero():
		req["until"] = o.Until.UTC().Format(time.RFC3339Nano)
	case o.For != 0:
		req["until"] = strconv.FormatInt(int64((o.For+time.Second-1)/time.Second), 10) + "s"
	}
	var body []byte
	if len(req) > 0 {
		body, _ = json.Marshal(req) // strings and nil: cannot fail
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
	return h.hold(), nil
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
		hs[i] = h.hold()
	}
	return hs, nil
}

type policyJSON struct {
	KeepPerToplevel int  `json:"keepPerToplevel"`
	IsDefault       bool `json:"isDefault"`
	RenewalPending  bool `json:"renewalPending"`
}

// Policy returns canvas's retention settings. Errors: ErrInvalid,
// ErrPermission, ErrUnavailable. Retried like Save.
func (c *Client) Policy(ctx context.Context, canvas CanvasID) (CanvasPolicy, error) {
	resp, err := c.do(ctx, request{method: http.MethodGet, path: canvasPath(canvas) + "/policy", retry: true})
	if err != nil {
		return CanvasPolicy{}, fmt.Errorf("policy of %s: %w", canvas, err)
	}
	return decodePolicy(resp.body)
}

// SetPolicy sets canvas's keep-N (an admin token's call): keep 1 to 1000,
// or 0 to go back to the gateway's default. A raise renews the traces it
// newly keeps before the gateway answers; RenewalPending says it left some
// to its next GC pass. Idempotent, retried like Save. Errors: ErrInvalid,
// ErrPermission, ErrNotFound (a deleted canvas), ErrUnavailable.
func (c *Client) SetPolicy(ctx context.Context, canvas CanvasID, keep int) (CanvasPolicy, error) {
	var req struct {
		Keep *int `json:"keepPerToplevel"`
	}
	if keep != 0 {
		req.Keep = &keep
	}
	body, _ := json.Marshal(req) // an int or null: cannot fail
	resp, err := c.do(ctx, request{method: http.MethodPut, path: canvasPath(canvas) + "/policy",
		body: body, contentType: ctJSON, retry: true})
	if err != nil {
		return CanvasPolicy{}, fmt.Errorf("set policy of %s: %w", canvas, err)
	}
	return decodePolicy(resp.body)
}

func decodePolicy(b []byte) (CanvasPolicy, error) {
	var p policyJSON
	if err := json.Unmarshal(b, &p); err != nil {
		return CanvasPolicy{}, fmt.Errorf("decode policy: %w", err)
	}
	return CanvasPolicy(p), nil
}
