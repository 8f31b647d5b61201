package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Direct uploads: Save sends a trace whose compressed document reaches the
// threshold (WithDirectUploadAbove, default 1 MiB) straight to Cloud
// Storage. It asks the gateway for a signed upload URL
// (POST …/traces/uploads with the trace ID and the document's SHA-256),
// PUTs the compressed document there with the headers the gateway signed
// (create-only, the gateway's customTime), and finalizes
// (POST …/traces/uploads/{id}/finalize), after which the gateway has read,
// validated and indexed it. A gateway without direct uploads answers the
// first call 404, and Save then posts the trace as usual.

// WithDirectUploadAbove uploads traces whose gzip-compressed document is at
// least n bytes straight to storage through a signed URL (default
// DefaultDirectUploadAbove); n <= 0 never does.
func WithDirectUploadAbove(n int64) Option { return func(c *Client) { c.directMin = n } }

// errDirectOff is a gateway without direct uploads.
var errDirectOff = errors.New("direct uploads are off")

type uploadSlot struct {
	TraceID  TraceID           `json:"traceID"`
	Method   string            `json:"method"`
	URL      string            `json:"url"`
	Headers  map[string]string `json:"headers"`
	Finalize string            `json:"finalize"`
}

// saveDirect stores trace id, whose canonical document is doc and its gzip
// gz, through a direct upload. errDirectOff: the gateway has none.
func (c *Client) saveDirect(ctx context.Context, canvas CanvasID, id TraceID, doc, gz []byte) (Saved, error) {
	sum := sha256.Sum256(doc)
	sha := hex.EncodeToString(sum[:])
	reqBody, _ := json.Marshal(map[string]string{"traceID": string(id), "sha256": sha})
	resp, err := c.do(ctx, request{method: http.MethodPost, path: canvasPath(canvas) + "/traces/uploads",
		body: reqBody, contentType: ctJSON, retry: true})
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Status == http.StatusNotFound && apiErr.Code == "not_found" {
		return Saved{}, errDirectOff
	}
	if err != nil {
		return Saved{}, fmt.Errorf("save trace %s: upload slot: %w", id, err)
	}
	var slot uploadSlot
	if err := json.Unmarshal(resp.body, &slot); err != nil || slot.URL == "" || slot.Finalize == "" {
		return Saved{}, fmt.Errorf("save trace %s: upload slot: decode response: %v", id, err)
	}
	if err := c.put(ctx, slot, gz); err != nil {
		return Saved{}, fmt.Errorf("save trace %s: upload: %w", id, err)
	}
	fin, _ := json.Marshal(map[string]string{"sha256": sha})
	resp, err = c.do(ctx, request{method: http.MethodPost, path: slot.Finalize, body: fin, contentType: ctJSON, retry: true})
	if err != nil {
		return Saved{}, fmt.Errorf("save trace %s: finalize: %w", id, err)
	}
	s, err := decodeSaved(resp.body)
	if err != nil {
		return Saved{}, fmt.Errorf("save trace %s: finalize: %w", id, err)
	}
	s.Created = resp.status == http.StatusCreated
	return s, nil
}

// put uploads body to the slot, retrying network errors, 429 and 5xx. A
// 412 means the object exists (an earlier try landed, or another document
// holds the ID): finalize tells which.
func (c *Client) put(ctx context.Context, slot uploadSlot, body []byte) error {
	var last error
	for attempt := 1; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, slot.Method, slot.URL, bytes.NewReader(body))
		if err != nil {
			return err
		}
		for k, v := range slot.Headers {
			req.Header.Set(k, v)
		}
		resp, err := c.hc.Do(req)
		if err == nil {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
			resp.Body.Close()
			switch {
			case resp.StatusCode/100 == 2 || resp.StatusCode == http.StatusPreconditionFailed:
				return nil
			case resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode < 500:
				return fmt.Errorf("storage answered %s: %s", resp.Status, bytes.TrimSpace(msg))
			}
			last = fmt.Errorf("%w: storage answered %s", ErrUnavailable, resp.Status)
		} else if ctx.Err() != nil {
			return ctx.Err()
		} else {
			last = fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if attempt >= c.attempts {
			return last
		}
		t := time.NewTimer(c.jitter(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w (last error: %v)", ctx.Err(), last)
		case <-t.C:
		}
	}
}
