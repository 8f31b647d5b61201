package history

import (
	"context"
	"fmt"

	"github.com/tracegw/tracegw/internal/canvases"
	"github.com/tracegw/tracegw/internal/holds"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
	"github.com/tracegw/tracegw/internal/ttl"
)

// The driver: every call the histories and the checks make into tracegw's
// services and index. When a service's signature changes, this file (and
// the wiring in system_test.go) is what needs adapting.

func (s *system) save(ctx context.Context, c traces.CanvasID, t *traces.Trace) (tracestore.Saved, error) {
	return s.svc.Save(ctx, c, t)
}

func (s *system) replace(ctx context.Context, c traces.CanvasID, id traces.TraceID, t *traces.Trace, ifGeneration int64) (tracestore.Saved, error) {
	return s.svc.Replace(ctx, c, id, t, ifGeneration)
}

func (s *system) addLayer(ctx context.Context, c traces.CanvasID, id traces.TraceID, tlids []traces.TLID, results []traces.FunctionResult) (tracestore.AddedLayer, error) {
	return s.svc.AddLayer(ctx, c, id, tlids, results)
}

func (s *system) get(ctx context.Context, c traces.CanvasID, id traces.TraceID) (tracestore.Read, error) {
	return s.svc.Get(ctx, c, id)
}

func (s *system) recent(ctx context.Context, c traces.CanvasID, tlid traces.TLID, limit int) ([]traces.Summary, error) {
	return s.svc.Recent(ctx, c, tlid, limit)
}

func (s *system) forget(ctx context.Context, c traces.CanvasID, tlid traces.TLID) error {
	return s.jobs.ForgetToplevel(ctx, c, tlid)
}

func (s *system) importTrace(ctx context.Context, c traces.CanvasID, t *traces.Trace) (tracestore.Saved, error) {
	return s.svc.Import(ctx, c, t)
}

func (s *system) hold(ctx context.Context, c traces.CanvasID, id traces.TraceID, sp holds.Spec) error {
	_, err := s.holds.HoldWith(ctx, c, id, sp)
	return err
}

func (s *system) setKeep(ctx context.Context, c traces.CanvasID, keep int) (canvases.Policy, error) {
	return s.jobs.SetPolicy(ctx, c, keep)
}

func (s *system) release(ctx context.Context, c traces.CanvasID, id traces.TraceID) error {
	return s.holds.Release(ctx, c, id)
}

// deleteCanvas starts a canvas deletion and waits for its job to finish.
func (s *system) deleteCanvas(ctx context.Context, c traces.CanvasID) error {
	job, err := s.jobs.DeleteCanvas(ctx, c)
	if err != nil {
		return err
	}
	job, err = s.jobs.Wait(ctx, job.ID)
	if err != nil {
		return err
	}
	if job.State != traces.JobDone {
		return fmt.Errorf("delete canvas job %s: %s: %s", job.ID, job.State, job.Error)
	}
	return nil
}

// gcPass runs one GC pass, as a replica would, alongside the requests;
// killAfter > 0 cancels it after that many customTime PATCHes.
func (s *system) gcPass(ctx context.Context, killAfter int) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &killingRenewer{flakyObjects: s.objects, after: int64(killAfter), cancel: cancel}
	g, err := ttl.New(r, s.db, s.policy, s.emu.E.Now, nil, nil, s.gcOptions())
	if err != nil {
		return err
	}
	_, err = g.Pass(ctx, false)
	return err
}

// indexRows returns every indexed trace of canvas c with the generation
// its rows describe.
func (s *system) indexRows(ctx context.Context, c traces.CanvasID) (map[traces.TraceID]int64, error) {
	out := map[traces.TraceID]int64{}
	var after traces.TraceID
	for {
		page, err := s.db.TraceGenerations(ctx, c, after, 1000)
		if err != nil {
			return nil, err
		}
		if len(page) == 0 {
			return out, nil
		}
		for _, r := range page {
			out[r.ID] = r.Generation
		}
		after = page[len(page)-1].ID
	}
}

// indexed reports whether a trace has index rows.
func (s *system) indexed(ctx context.Context, c traces.CanvasID, id traces.TraceID) (bool, error) {
	_, err := s.db.Get(ctx, c, id)
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, err
}
