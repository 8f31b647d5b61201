package client

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// Import brings in a trace recorded elsewhere (POST …/traces?import=true,
// role admin): it is stored as Save stores it, with the same checks and
// answers (Created false for a trace the gateway already holds, ErrConflict
// for another document under its ID), but the object's customTime is the
// trace's own Timestamp (never later than the gateway's now), so the
// retention policy judges it by its age, and the gateway renews the
// keepers of every toplevel it touches before it answers. t.ID is
// required (ErrInvalid without one): the ID is what makes a repeat
// harmless. Retried like Save; errors as Save's.
func (c *Client) Import(ctx context.Context, canvas CanvasID, t *Trace) (Saved, error) {
	if t.ID == "" {
		return Saved{}, fmt.Errorf("import trace: %w", &APIError{Status: http.StatusBadRequest, Code: "invalid_argument",
			Message: "traceID is required when importing", Field: "traceID"})
	}
	body, err := encodeTrace(t)
	if err != nil {
		return Saved{}, err
	}
	resp, err := c.do(ctx, request{method: http.MethodPost, path: canvasPath(canvas) + "/traces",
		query: url.Values{"import": {"true"}}, body: body, contentType: ctMsgpack, retry: true})
	if err != nil {
		return Saved{}, fmt.Errorf("import trace %s: %w", t.ID, err)
	}
	s, err := decodeSaved(resp.body)
	if err != nil {
		return Saved{}, fmt.Errorf("import trace %s: %w", t.ID, err)
	}
	s.Created = resp.status == http.StatusCreated
	return s, nil
}
