package history

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
)

// The faults the histories inject besides the emulator's own 503s: thin
// wrappers around the real index and bucket adapter that the services are
// given (they override the methods whose failure matters), and a GC
// adapter that kills its pass.

// faultSwitch counts armed faults by name.
type faultSwitch struct {
	mu   sync.Mutex
	arms map[string]int
}

func (f *faultSwitch) arm(name string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.arms[name] += n
}

func (f *faultSwitch) take(name string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.arms[name] > 0 {
		f.arms[name]--
		return true
	}
	return false
}

func (f *faultSwitch) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.arms)
}

func injected(what string) error {
	return fmt.Errorf("%s: injected fault: %w", what, traces.ErrUnavailable)
}

// flakyIndex is the real index whose writes can fail: "db:METHOD:before"
// fails the call without running it (the database went away between the
// object write and the index write), "db:METHOD:after" runs it and then
// fails (the commit happened, the answer was lost).
type flakyIndex struct {
	*index.DB
	f *faultSwitch
}

func (x *flakyIndex) before(m string) error {
	if x.f.take("db:" + m + ":before") {
		return injected(m)
	}
	return nil
}

func (x *flakyIndex) after(m string, err error) error {
	if err == nil && x.f.take("db:"+m+":after") {
		return injected(m)
	}
	return err
}

func (x *flakyIndex) PutTrace(ctx context.Context, r traces.Record, now time.Time) (index.Put, error) {
	if err := x.before("PutTrace"); err != nil {
		return index.Put{}, err
	}
	p, err := x.DB.PutTrace(ctx, r, now)
	return p, x.after("PutTrace", err)
}

func (x *flakyIndex) BeginOp(ctx context.Context, c traces.CanvasID, id traces.TraceID) (traces.Record, index.Token, error) {
	if err := x.before("BeginOp"); err != nil {
		return traces.Record{}, index.Token{}, err
	}
	r, tok, err := x.DB.BeginOp(ctx, c, id)
	return r, tok, x.after("BeginOp", err)
}

func (x *flakyIndex) EndOp(ctx context.Context, c traces.CanvasID, id traces.TraceID, tok index.Token, held bool) (bool, error) {
	if err := x.before("EndOp"); err != nil {
		return false, err
	}
	ok, err := x.DB.EndOp(ctx, c, id, tok, held)
	return ok, x.after("EndOp", err)
}

func (x *flakyIndex) ReplaceTrace(ctx context.Context, r traces.Record, now time.Time, tok index.Token) (index.Replaced, error) {
	if err := x.before("ReplaceTrace"); err != nil {
		return index.Replaced{}, err
	}
	rep, err := x.DB.ReplaceTrace(ctx, r, now, tok)
	return rep, x.after("ReplaceTrace", err)
}

func (x *flakyIndex) ReserveLayer(ctx context.Context, c traces.CanvasID, id traces.TraceID, max int) (traces.Record, index.Token, error) {
	if err := x.before("ReserveLayer"); err != nil {
		return traces.Record{}, index.Token{}, err
	}
	r, tok, err := x.DB.ReserveLayer(ctx, c, id, max)
	return r, tok, x.after("ReserveLayer", err)
}

func (x *flakyIndex) CommitLayer(ctx context.Context, c traces.CanvasID, id traces.TraceID, gen int64, tlids []traces.TLID, tok index.Token, held bool, now time.Time) (bool, []traces.TLID, error) {
	if err := x.before("CommitLayer"); err != nil {
		return false, nil, err
	}
	ok, due, err := x.DB.CommitLayer(ctx, c, id, gen, tlids, tok, held, now)
	return ok, due, x.after("CommitLayer", err)
}

func (x *flakyIndex) ForgetToplevel(ctx context.Context, c traces.CanvasID, tlid traces.TLID, at time.Time) error {
	if err := x.before("ForgetToplevel"); err != nil {
		return err
	}
	return x.after("ForgetToplevel", x.DB.ForgetToplevel(ctx, c, tlid, at))
}

func (x *flakyIndex) SetCanvasKeep(ctx context.Context, c traces.CanvasID, keep, defaultKeep int, now time.Time) (index.KeepChange, error) {
	if err := x.before("SetCanvasKeep"); err != nil {
		return index.KeepChange{}, err
	}
	ch, err := x.DB.SetCanvasKeep(ctx, c, keep, defaultKeep, now)
	return ch, x.after("SetCanvasKeep", err)
}

func (x *flakyIndex) BeginHold(ctx context.Context, c traces.CanvasID, id traces.TraceID, h index.HoldSpec, heldAt time.Time, quota int) (index.Holding, error) {
	if err := x.before("BeginHold"); err != nil {
		return index.Holding{}, err
	}
	got, err := x.DB.BeginHold(ctx, c, id, h, heldAt, quota)
	return got, x.after("BeginHold", err)
}

func (x *flakyIndex) BeginRelease(ctx context.Context, c traces.CanvasID, id traces.TraceID) (index.Releasing, error) {
	if err := x.before("BeginRelease"); err != nil {
		return index.Releasing{}, err
	}
	r, err := x.DB.BeginRelease(ctx, c, id)
	return r, x.after("BeginRelease", err)
}

func (x *flakyIndex) EndRelease(ctx context.Context, c traces.CanvasID, id traces.TraceID, tok index.Token, ct time.Time) (bool, error) {
	if err := x.before("EndRelease"); err != nil {
		return false, err
	}
	ok, err := x.DB.EndRelease(ctx, c, id, tok, ct)
	return ok, x.after("EndRelease", err)
}

// flakyObjects is the real bucket adapter whose writes can lose their
// answer: "lost:METHOD" runs the call and then fails it, as when GCS
// applied a request whose response never arrived (the emulator's own
// injected 503s always come before any effect).
type flakyObjects struct {
	*objstore.GCS
	f *faultSwitch
}

func (o *flakyObjects) lost(m string, err error) error {
	if err == nil && o.f.take("lost:"+m) {
		return injected(m + " (response lost)")
	}
	return err
}

func (o *flakyObjects) Create(ctx context.Context, key string, body []byte, n traces.NewObject) (traces.ObjectInfo, error) {
	info, err := o.GCS.Create(ctx, key, body, n)
	return info, o.lost("Create", err)
}

func (o *flakyObjects) Replace(ctx context.Context, key string, body []byte, n traces.NewObject, gen int64) (traces.ObjectInfo, error) {
	info, err := o.GCS.Replace(ctx, key, body, n, gen)
	return info, o.lost("Replace", err)
}

func (o *flakyObjects) SetTemporaryHold(ctx context.Context, key string, held bool, ct time.Time) (traces.ObjectInfo, error) {
	info, err := o.GCS.SetTemporaryHold(ctx, key, held, ct)
	return info, o.lost("SetTemporaryHold", err)
}

func (o *flakyObjects) SetCustomTime(ctx context.Context, key string, t time.Time, ifMeta int64) (traces.ObjectInfo, error) {
	info, err := o.GCS.SetCustomTime(ctx, key, t, ifMeta)
	return info, o.lost("SetCustomTime", err)
}

func (o *flakyObjects) Delete(ctx context.Context, key string, gen int64) error {
	return o.lost("Delete", o.GCS.Delete(ctx, key, gen))
}

// killingRenewer is a GC's bucket adapter that cancels the pass after its
// nth customTime PATCH, as if the process died mid-pass.
type killingRenewer struct {
	*flakyObjects
	n      atomic.Int64
	after  int64
	cancel context.CancelFunc
}

func (k *killingRenewer) SetCustomTime(ctx context.Context, key string, t time.Time, ifMeta int64) (traces.ObjectInfo, error) {
	info, err := k.flakyObjects.SetCustomTime(ctx, key, t, ifMeta)
	if k.after > 0 && k.n.Add(1) == k.after {
		k.cancel()
	}
	return info, err
}
