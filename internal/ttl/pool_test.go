package ttl

import (
	"context"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// A pass over more due canvases than the index pool has connections
// finishes: each canvas claim holds a connection for the whole canvas, and
// claims must not starve the queries they wait for.
func TestPassWithSmallPool(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	db, err := index.Open(ctx, testutil.PG(t), index.Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	old := now.Add(-6 * Day)
	store := newMemStore()
	for i := range 8 {
		c := canvas(byte(i + 1))
		r := traces.Record{Canvas: c, ID: traces.NewTraceID(old), RootTLID: 1, Timestamp: old, Generation: 1, CustomTime: old}
		if _, err := db.PutTrace(ctx, r, r.CustomTime); err != nil {
			t.Fatal(err)
		}
		store.put(traces.TraceKey(c, r.ID), old)
	}
	g, err := New(store, db, DefaultPolicy(), func() time.Time { return now }, nil, nil, Options{Canvases: 4})
	if err != nil {
		t.Fatal(err)
	}
	sum, err := g.Pass(ctx, false)
	if err != nil || sum.Canvases != 8 || sum.Renewed != 8 {
		t.Fatalf("Pass = %+v, %v; want 8 canvases, 8 renewed", sum, err)
	}
}
