package tracestore

import (
	"context"

	"github.com/tracegw/tracegw/internal/traces"
)

// Bounds of the list routes: a toplevel's list (default 10, at most 100)
// and the toplevels of one batch.
const (
	DefaultListLimit = 10
	MaxListLimit     = 100
	MaxBatchTLIDs    = 1000
)

// listIndex is what listing needs from the index.
type listIndex interface {
	Recent(ctx context.Context, c traces.CanvasID, tlid traces.TLID, limit int) ([]traces.Summary, error)
	RecentMany(ctx context.Context, c traces.CanvasID, tlids []traces.TLID, limit int) (map[traces.TLID][]traces.Summary, error)
}

// Recent lists the newest traces that touched tlid, newest first.
func (s *Service) Recent(ctx context.Context, c traces.CanvasID, tlid traces.TLID, limit int) ([]traces.Summary, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	return s.index.Recent(ctx, c, tlid, limit)
}

// RecentMany lists the newest traces of many toplevels in one round trip.
func (s *Service) RecentMany(ctx context.Context, c traces.CanvasID, tlids []traces.TLID, limit int) (map[traces.TLID][]traces.Summary, error) {
	if err := checkLimit(limit); err != nil {
		return nil, err
	}
	if len(tlids) > MaxBatchTLIDs {
		return nil, traces.TooLarge("tlids", MaxBatchTLIDs)
	}
	return s.index.RecentMany(ctx, c, tlids, limit)
}

func checkLimit(limit int) error {
	if limit < 1 || limit > MaxListLimit {
		return traces.Invalid("limit", "must be between 1 and %d", MaxListLimit)
	}
	return nil
}
