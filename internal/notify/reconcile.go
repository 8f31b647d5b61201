package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// Reconcile's batch sizes: index rows per keyset query, canvases per
// query, missing candidates confirmed and removed together, concurrent Stat
// calls, and keys kept per sample in the report.
const (
	reconcileRows     = 1000
	reconcileCanvases = 100
	reconcileConfirm  = 1000
	reconcileStats    = 16
	reportSample      = 100
)

// bucketLister is what Reconcile needs from Cloud Storage. *objstore.GCS
// has it.
type bucketLister interface {
	// Objects lists the objects under prefix in name order, page by page.
	Objects(ctx context.Context, prefix string) iter.Seq2[traces.ObjectInfo, error]
	// Stat returns an object's attributes; absent: traces.ErrNotFound.
	Stat(ctx context.Context, key string) (traces.ObjectInfo, error)
}

// ReconcileReport is what Reconcile found and did.
type ReconcileReport struct {
	// DryRun is set when nothing was removed.
	DryRun bool
	// Objects is how many objects were listed, Traces how many of them are
	// trace objects, Foreign how many follow no tracegw layout.
	Objects, Traces, Foreign int
	// Rows is how many indexed traces were compared with the listing.
	Rows int
	// Missing counts indexed traces whose object is gone (absent from the
	// listing and confirmed absent by Stat afterwards); Removed how many of
	// them had their rows removed (0 on a dry run; fewer than Missing if a
	// notification got there first).
	Missing, Removed int
	// Orphans counts trace objects without index rows: a save in progress,
	// or a crash between object and row. They expire on their own.
	Orphans int
	// NoCustomTime counts objects without customTime, which the lifecycle
	// rule never deletes.
	NoCustomTime int
	// The first keys of each kind, for the operator.
	MissingKeys, OrphanKeys, NoCustomTimeKeys []string
}

func sample(keys []string, key string) []string {
	if len(keys) < reportSample {
		keys = append(keys, key)
	}
	return keys
}

// ref is a trace in (canvas, trace ID) order — the order of both the index's
// primary key and the object names.
type ref struct {
	canvas traces.CanvasID
	id     traces.TraceID
	gen    int64
}

func compareRefs(a, b ref) int {
	if c := bytes.Compare(a.canvas[:], b.canvas[:]); c != 0 {
		return c
	}
	return bytes.Compare(a.id[:], b.id[:])
}

// Reconcile compares the bucket with the index, for one canvas or (canvas
// nil) all of them, so that lost notifications (a subscription outage past
// retention, a dead-letter queue) are healed. Both sides are read in order
// and merged, in pages: the listing through l.Objects, the index in keyset
// batches. An indexed trace absent from the listing is confirmed absent with
// l.Stat — a trace saved after its listing page was read has rows but was
// not listed — and then, unless dryRun, its rows are removed if they still
// describe that generation or an older one. Objects without rows and
// objects without customTime are only reported: reconcile never writes to
// Cloud Storage.
//
// The report counts what was done until an error; errors wrap
// traces.ErrUnavailable when the bucket or the index cannot be reached.
func Reconcile(ctx context.Context, l bucketLister, db *index.DB, canvas *traces.CanvasID, dryRun bool) (ReconcileReport, error) {
	rep := ReconcileReport{DryRun: dryRun}
	prefix := ""
	if canvas != nil {
		prefix = traces.CanvasPrefix(*canvas)
	}
	nextObject, stopObjects := iter.Pull2(listTraces(ctx, l, prefix, &rep))
	defer stopObjects()
	nextRow, stopRows := iter.Pull2(indexedTraces(ctx, db, canvas))
	defer stopRows()

	var pending []ref
	flush := func() error {
		err := confirmAndRemove(ctx, l, db, pending, dryRun, &rep)
		pending = pending[:0]
		return err
	}
	obj, objErr, haveObj := nextObject()
	row, rowErr, haveRow := nextRow()
	for {
		if objErr != nil {
			return rep, fmt.Errorf("reconcile: %w", objErr)
		}
		if rowErr != nil {
			return rep, fmt.Errorf("reconcile: %w", rowErr)
		}
		if !haveObj && !haveRow {
			break
		}
		c := 0
		switch {
		case !haveObj:
			c = 1
		case !haveRow:
			c = -1
		default:
			c = compareRefs(obj, row)
		}
		switch {
		case c < 0: // an object without rows
			rep.Orphans++
			rep.OrphanKeys = sample(rep.OrphanKeys, traces.TraceKey(obj.canvas, obj.id))
			obj, objErr, haveObj = nextObject()
		case c > 0: // rows without an object, as far as the listing saw
			rep.Rows++
			pending = append(pending, row)
			if len(pending) >= reconcileConfirm {
				if err := flush(); err != nil {
					return rep, err
				}
			}
			row, rowErr, haveRow = nextRow()
		default:
			rep.Rows++
			obj, objErr, haveObj = nextObject()
			row, rowErr, haveRow = nextRow()
		}
	}
	if err := flush(); err != nil {
		return rep, err
	}
	return rep, nil
}

// listTraces yields the trace objects under prefix in name order, counting
// every object listed into rep.
func listTraces(ctx context.Context, l bucketLister, prefix string, rep *ReconcileReport) iter.Seq2[ref, error] {
	return func(yield func(ref, error) bool) {
		for o, err := range l.Objects(ctx, prefix) {
			if err != nil {
				yield(ref{}, fmt.Errorf("list %q: %w", prefix, err))
				return
			}
			rep.Objects++
			if o.CustomTime.IsZero() {
				rep.NoCustomTime++
				rep.NoCustomTimeKeys = sample(rep.NoCustomTimeKeys, o.Key)
			}
			k, err := traces.ParseKey(o.Key)
			if err != nil {
				rep.Foreign++
				continue
			}
			if k.Kind != traces.KindTrace {
				continue
			}
			rep.Traces++
			if !yield(ref{canvas: k.Canvas, id: k.Trace, gen: o.Generation}, nil) {
				return
			}
		}
	}
}

// indexedTraces yields the indexed traces of canvas (nil: of every canvas)
// in (canvas, trace ID) order, in keyset batches.
func indexedTraces(ctx context.Context, db *index.DB, canvas *traces.CanvasID) iter.Seq2[ref, error] {
	return func(yield func(ref, error) bool) {
		canvases := func(yield func(traces.CanvasID, error) bool) {
			if canvas != nil {
				yield(*canvas, nil)
				return
			}
			var after traces.CanvasID
			for {
				page, err := db.Canvases(ctx, after, reconcileCanvases)
				if err != nil {
					yield(after, err)
					return
				}
				if len(page) == 0 {
					return
				}
				for _, c := range page {
					if !yield(c, nil) {
						return
					}
				}
				after = page[len(page)-1]
			}
		}
		for c, err := range canvases {
			if err != nil {
				yield(ref{}, err)
				return
			}
			var after traces.TraceID
			for {
				page, err := db.TraceGenerations(ctx, c, after, reconcileRows)
				if err != nil {
					yield(ref{}, err)
					return
				}
				if len(page) == 0 {
					break
				}
				for _, t := range page {
					if !yield(ref{canvas: c, id: t.ID, gen: t.Generation}, nil) {
						return
					}
				}
				after = page[len(page)-1].ID
			}
		}
	}
}

// confirmAndRemove Stats each candidate and removes the rows of those still
// absent. Objects are written before their rows, so a row that was read
// before a Stat found no object describes an object deleted since.
func confirmAndRemove(ctx context.Context, l bucketLister, db *index.DB, candidates []ref, dryRun bool, rep *ReconcileReport) error {
	if len(candidates) == 0 {
		return nil
	}
	var (
		mu   sync.Mutex
		gone []index.Deletion
	)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(reconcileStats)
	for _, r := range candidates {
		g.Go(func() error {
			key := traces.TraceKey(r.canvas, r.id)
			_, err := l.Stat(gctx, key)
			switch {
			case err == nil: // saved after the listing page was read
				return nil
			case !errors.Is(err, traces.ErrNotFound):
				return fmt.Errorf("confirm %s: %w", key, err)
			}
			mu.Lock()
			defer mu.Unlock()
			gone = append(gone, index.Deletion{Canvas: r.canvas, ID: r.id, Generation: r.gen})
			rep.MissingKeys = sample(rep.MissingKeys, key)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	rep.Missing += len(gone)
	if dryRun || len(gone) == 0 {
		return nil
	}
	n, err := db.RemoveMany(ctx, gone)
	if err != nil {
		return fmt.Errorf("reconcile: %w", err)
	}
	rep.Removed += n
	return nil
}
