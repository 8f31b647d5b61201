package notify

import (
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/tracegw/tracegw/testutil"
)

// TestOfficialEmulator runs the consumer against the official Pub/Sub
// emulator and real PostgreSQL, with messages shaped exactly like GCS's. It
// sets PUBSUB_EMULATOR_HOST, so it is not parallel.
func TestOfficialEmulator(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", testutil.PubSubEmulator(t))
	newClient := func(t *testing.T) *pubsub.Client {
		t.Helper()
		client, err := pubsub.NewClient(t.Context(), testProject)
		if err != nil {
			t.Fatalf("pubsub.NewClient: %v", err)
		}
		t.Cleanup(func() { client.Close() })
		return client
	}

	t.Run("deletions", func(t *testing.T) {
		r := newRig(t, newClient(t), testutil.PG(t))
		c := testCanvas(1)
		deleted := r.putTrace(c, 1, 1000, 0)
		overwritten := r.putTrace(c, 2, 2000, 0) // rows describe the new generation 2000
		rewritten := r.putTrace(c, 3, 2, 0)      // generation 1 was replaced by 2 before its delete arrived
		r.start(nil, Options{})

		r.publishDelete(deleted, 1000, nil)
		r.publishDelete(deleted, 1000, nil) // GCS repeats itself with a new message ID
		r.publishDelete(overwritten, 1999, map[string]string{"overwrittenByGeneration": "2000"})
		r.publishDelete(rewritten, 1, nil)
		malformedID := r.publish(map[string]string{"eventType": EventDelete, "bucketId": testBucket}, []byte("{}"))
		r.waitApplied(5)

		if r.indexed(deleted) {
			t.Errorf("deleted trace still indexed")
		}
		if !r.indexed(overwritten) {
			t.Errorf("overwrite's OBJECT_DELETE removed the rows of the new generation")
		}
		if !r.indexed(rewritten) {
			t.Errorf("late delete of generation 1 removed the rows of generation 2")
		}
		if got := r.counter("malformed"); got != 1 {
			t.Errorf("malformed = %v, want 1 (message %s)", got, malformedID)
		}
		if got := r.counter("ignored", string(ReasonOverwrite)); got != 1 {
			t.Errorf("ignored{overwrite} = %v, want 1", got)
		}
		if got := r.counter("removed"); got != 1 {
			t.Errorf("traces removed = %v, want 1 (the repeat and the late delete remove nothing)", got)
		}
		if got := r.counter("nacked"); got != 0 {
			t.Errorf("nacked = %v, want 0", got)
		}

		// Everything was acked: a new consumer on the subscription sees only
		// a marker published after the first one stopped.
		r.stop()
		marker := r.putTrace(c, 4, 5, 0)
		second := r.start(nil, Options{})
		r.publishDelete(marker, 5, nil)
		r.waitApplied(1)
		if r.indexed(marker) {
			t.Errorf("marker trace still indexed")
		}
		r.stop()
		if got := second.Received(); got != 1 {
			t.Errorf("second consumer received %d messages, want 1: acked messages came back", got)
		}
	})

	t.Run("database outage", func(t *testing.T) {
		pg := testutil.PGPrivate(t)
		r := newRig(t, newClient(t), pg.URL())
		c := testCanvas(2)
		a, b := r.putTrace(c, 1, 10, 0), r.putTrace(c, 2, 20, 0)
		r.start(nil, Options{})

		pg.Stop()
		r.publishDelete(a, 10, nil)
		r.publishDelete(b, 20, nil)
		// Both are nacked and come back at least once while the server is down.
		testutil.WaitFor(t, 30*time.Second, "4 notifications received", func() bool { return r.c.Received() >= 4 })
		if got := r.c.Applied(); got != 0 {
			t.Fatalf("applied %d messages with the database down", got)
		}
		if got := r.counter("nacked"); got < 2 {
			t.Errorf("nacked = %v, want at least 2", got)
		}
		pg.Start()
		r.waitApplied(2)
		if r.indexed(a) || r.indexed(b) {
			t.Errorf("traces still indexed after the database returned")
		}
	})
}
