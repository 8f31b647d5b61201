package index

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// TestServerRestart: PostgreSQL restarting costs errors, not data. While it
// is down every call fails with ErrUnavailable; once it is back the same DB
// (same pool) works again and nothing saved before is lost.
func TestServerRestart(t *testing.T) {
	t.Parallel()
	pg := testutil.PGPrivate(t)
	db, err := Open(t.Context(), pg.URL(), Options{MaxConns: 2})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	c := canvasID(1)
	before := record(c, 0, 10)
	put(t, db, before)

	pg.Stop()
	unavailable := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, traces.ErrUnavailable) {
			t.Errorf("%s while the server is down: %v, want ErrUnavailable", what, err)
		}
	}
	_, err = db.PutTrace(t.Context(), record(c, 1, 10), base)
	unavailable("PutTrace", err)
	_, err = db.Recent(t.Context(), c, 10, 10)
	unavailable("Recent", err)
	_, err = db.Get(t.Context(), c, before.ID)
	unavailable("Get", err)
	_, err = db.RemoveMany(t.Context(), []Deletion{{Canvas: c, ID: before.ID, Generation: before.Generation}})
	unavailable("RemoveMany", err)
	unavailable("Ping", db.Ping(t.Context()))

	pg.Start()
	after := record(c, 2, 10)
	put(t, db, after)
	got, err := db.Recent(t.Context(), c, 10, 10)
	if err != nil {
		t.Fatalf("Recent after restart: %v", err)
	}
	if d := cmp.Diff([]traces.Summary{summary(after), summary(before)}, got); d != "" {
		t.Errorf("Recent after restart (-want +got):\n%s", d)
	}
}
