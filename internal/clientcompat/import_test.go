package clientcompat_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/internal/httpapi"
)

// Import against a gateway whose GC renews keepers: twelve traces of one
// toplevel, twenty days old, imported newest first. The newest ten are its
// keepers and kept; the two oldest are kept by nothing (their customTime
// is their own timestamp, long past retention). A repeat answers Created
// false, another document under an imported ID ErrConflict, an executor
// ErrPermission and a trace without its ID ErrInvalid.
func TestImport(t *testing.T) {
	t.Parallel()
	g := newGateway(t, nil)
	c := g.newClient(t)
	ctx := t.Context()
	canvas := newCanvas()
	old := time.Now().Add(-20 * 24 * time.Hour).UTC().Truncate(time.Millisecond)
	var ids []client.TraceID // newest first
	for i := range 12 {
		tr := sampleTrace(9)
		tr.Timestamp = old.Add(-time.Duration(i) * time.Minute)
		tr.ID = client.NewTraceID(tr.Timestamp)
		s, err := c.Import(ctx, canvas, tr)
		if err != nil || !s.Created || s.ID != tr.ID {
			t.Fatalf("Import %d = %+v, %v; want it created under its own ID", i, s, err)
		}
		ids = append(ids, tr.ID)
		if i == 0 {
			if s, err := c.Import(ctx, canvas, tr); err != nil || s.Created {
				t.Errorf("Import again = %+v, %v; want Created false", s, err)
			}
			other := sampleTrace(9)
			other.ID, other.Timestamp = tr.ID, tr.Timestamp
			other.Input = nil
			if _, err := c.Import(ctx, canvas, other); !errors.Is(err, client.ErrConflict) {
				t.Errorf("Import of another document under the ID = %v, want ErrConflict", err)
			}
		}
	}
	list, err := c.Recent(ctx, canvas, 9, 100)
	if err != nil || len(list) != 12 {
		t.Fatalf("Recent = %d traces, %v; want 12", len(list), err)
	}
	for i, s := range list {
		if s.ID != ids[i] {
			t.Fatalf("Recent[%d] = %s, want %s (newest first)", i, s.ID, ids[i])
		}
		if i < 10 && !slices.Equal(s.Kept.Because, []string{"latest", "recent"}) {
			t.Errorf("keeper %d kept because %v, want latest and recent (renewed at import)", i, s.Kept.Because)
		}
		if i >= 10 && (len(s.Kept.Because) != 0 || !s.Kept.ExpiresAfter.Before(time.Now())) {
			t.Errorf("non-keeper %d kept because %v, expires after %s; want nothing keeping it, expiry passed", i, s.Kept.Because, s.Kept.ExpiresAfter)
		}
	}

	exec := client.New(g.URL, token(t, httpapi.RoleExecutor, ""), client.WithRetry(1, 0, 0))
	t.Cleanup(exec.Close)
	tr := sampleTrace(9)
	tr.ID = client.NewTraceID(old)
	if _, err := exec.Import(ctx, canvas, tr); !errors.Is(err, client.ErrPermission) {
		t.Errorf("Import by an executor = %v, want ErrPermission", err)
	}
	if _, err := c.Import(ctx, canvas, sampleTrace(9)); !errors.Is(err, client.ErrInvalid) {
		t.Errorf("Import without an ID = %v, want ErrInvalid", err)
	}
}
