package tracestore_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
)

// vanishing answers the first create 412 and the following stat 404: an
// earlier attempt's object that the bucket deleted between the two calls.
type vanishing struct {
	*objstore.GCS
	creates atomic.Int32
}

func (v *vanishing) Create(ctx context.Context, key string, body []byte, o traces.NewObject) (traces.ObjectInfo, error) {
	if v.creates.Add(1) == 1 {
		return traces.ObjectInfo{}, fmt.Errorf("create %s: %w", key, traces.ErrPreconditionFailed)
	}
	return v.GCS.Create(ctx, key, body, o)
}

func TestSaveRetryAfterObjectVanished(t *testing.T) {
	t.Parallel()
	r := newExecRig(t)
	svc := tracestore.New(&vanishing{GCS: r.gcs}, r.db, tracestore.Options{Now: r.now})
	saved, err := svc.Save(t.Context(), r.c, &traces.Trace{RootTLID: 5})
	if err != nil || !saved.Created {
		t.Fatalf("Save = %+v, %v; want a created trace", saved, err)
	}
	if _, err := r.svc.Get(t.Context(), r.c, saved.ID); err != nil {
		t.Errorf("Get after the save: %v", err)
	}
}
