package tracestore

import (
	"context"
	"fmt"

	"github.com/tracegw/tracegw/internal/traces"
)

// Bounds of a page of Canvases.
const (
	DefaultCanvasesLimit = 100
	MaxCanvasesLimit     = 1000
)

// canvasIndex is what listing canvases needs from the index.
type canvasIndex interface {
	Canvases(ctx context.Context, after traces.CanvasID, limit int) ([]traces.CanvasID, error)
}

// Canvases lists the canvases that hold traces, by canvas ID, a page of
// at most limit (1 to MaxCanvasesLimit; 0: DefaultCanvasesLimit) after the
// canvas after (the zero ID: from the first). more is true when another
// page may follow. A limit out of range wraps traces.ErrInvalid; backend
// faults wrap traces.ErrUnavailable.
func (s *Service) Canvases(ctx context.Context, after traces.CanvasID, limit int) (list []traces.CanvasID, more bool, err error) {
	if limit == 0 {
		limit = DefaultCanvasesLimit
	}
	if limit < 1 || limit > MaxCanvasesLimit {
		return nil, false, traces.Invalid("limit", "must be between 1 and %d", MaxCanvasesLimit)
	}
	list, err = s.index.Canvases(ctx, after, limit+1)
	if err != nil {
		return nil, false, fmt.Errorf("list canvases: %w", err)
	}
	if len(list) > limit {
		return list[:limit], true, nil
	}
	return list, false, nil
}
