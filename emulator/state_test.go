package emulator_test

import (
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/testutil"
)

// start runs an emulator on dir behind a loopback server; stop closes both.
func start(t *testing.T, dir string, opts []testutilOpt) (e *emulator.Emulator, c *storage.Client, stop func()) {
	t.Helper()
	o := emulator.Options{Dir: dir, Step: 24 * time.Hour}
	for _, f := range opts {
		f(&o)
	}
	e, err := emulator.New(t.Context(), o)
	if err != nil {
		t.Fatalf("new emulator: %v", err)
	}
	srv := httptest.NewServer(e.Handler())
	c, err = testutil.StorageClient(t, srv.URL)
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	return e, c, func() {
		c.Close()
		srv.Close()
		if err := e.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	}
}

type testutilOpt func(*emulator.Options)

// Objects and side state (metageneration, holds, customTime, lifecycle
// rules, notification configs, clock offset) survive a restart on the same
// directory.
func TestPersistenceAcrossRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ps, psOpts := testutil.PubSubServer(t)
	withPS := func(o *emulator.Options) { o.PubSubClientOptions = psOpts }
	v := &env{ps: ps}
	e, c, stop := start(t, dir, []testutilOpt{withPS})
	ctx := t.Context()
	if err := e.CreateBucket(ctx, "keep"); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	b := c.Bucket("keep")
	v.Emu = &testutil.Emu{E: e, Bucket: "keep", Client: c}
	pc := newPubSubClient(t, psOpts)
	v.pc = pc
	topic := v.topic(t, "events")
	n := v.notify(t, storage.Notification{TopicID: topic, EventTypes: []string{storage.ObjectDeleteEvent}})
	ct := e.Now().Truncate(time.Second)
	v.put(t, "held", "h", func(w *storage.Writer) { w.CustomTime = ct; w.EventBasedHold = true })
	v.put(t, "free", "f", func(w *storage.Writer) { w.CustomTime = ct })
	v.put(t, "later", "l", func(w *storage.Writer) { w.CustomTime = ct.Add(10 * 24 * time.Hour) })
	a, err := b.Object("held").Update(ctx, storage.ObjectAttrsToUpdate{TemporaryHold: true, Metadata: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	v.setLifecycle(t, deleteRule(storage.LifecycleCondition{DaysSinceCustomTime: 3}))
	v.advance(t, 2*24*time.Hour)
	clockBefore := e.Now()
	stop()

	e2, c2, stop2 := start(t, dir, []testutilOpt{withPS})
	defer stop2()
	v.Emu = &testutil.Emu{E: e2, Bucket: "keep", Client: c2}
	if d := e2.Now().Sub(clockBefore); d < 0 || d > time.Minute {
		t.Errorf("clock after restart is %s off, want the offset kept", d)
	}
	got := v.attrs(t, "held")
	if got.Generation != a.Generation || got.Metageneration != 2 || !got.TemporaryHold || !got.EventBasedHold ||
		!got.CustomTime.Equal(ct) || got.Metadata["k"] != "v" || !got.Created.Equal(a.Created) {
		t.Errorf("after restart: %+v\nwant generation %d metageneration 2, both holds, customTime %s, metadata, created %s", got, a.Generation, ct, a.Created)
	}
	r, err := c2.Bucket("keep").Object("free").NewReader(ctx)
	if err != nil {
		t.Fatalf("read after restart: %v", err)
	}
	data, _ := io.ReadAll(r)
	r.Close()
	if string(data) != "f" {
		t.Errorf("content %q, want f", data)
	}
	ba, err := c2.Bucket("keep").Attrs(ctx)
	if err != nil || len(ba.Lifecycle.Rules) != 1 {
		t.Fatalf("lifecycle after restart: %+v, %v", ba, err)
	}
	ns, err := c2.Bucket("keep").Notifications(ctx)
	if err != nil || ns[n.ID] == nil {
		t.Fatalf("notification configs after restart: %v, %v", ns, err)
	}
	s := v.advance(t, 24*time.Hour)
	if s.Deleted != 1 || v.exists(t, "free") || !v.exists(t, "held") || !v.exists(t, "later") {
		t.Errorf("sweep after restart deleted %d: want only free", s.Deleted)
	}
	msgs := v.got(t, topic)
	if len(msgs) != 1 || msgs[0].object != "free" {
		t.Errorf("messages after restart %+v, want one OBJECT_DELETE of free", msgs)
	}
	// A new config gets a fresh ID.
	n2 := v.notify(t, storage.Notification{TopicID: topic})
	if n2.ID == n.ID {
		t.Errorf("notification ID %s reused after restart", n2.ID)
	}
}

// Objects the emulator never saw being written (already in the directory)
// are adopted at start.
func TestAdoptsExistingObjects(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	e, c, stop := start(t, dir, nil)
	if err := e.CreateBucket(t.Context(), "adopt"); err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	for i := range 3 {
		w := c.Bucket("adopt").Object(fmt.Sprintf("o%d", i)).NewWriter(t.Context())
		w.ChunkSize = 0
		io.Copy(w, strings.NewReader("x"))
		if err := w.Close(); err != nil {
			t.Fatalf("upload: %v", err)
		}
	}
	stop()
	// Losing the side state (but not the objects) must not lose objects.
	for _, f := range []string{"state.json", "journal.jsonl"} {
		if err := removeFile(dir, f); err != nil {
			t.Fatalf("remove %s: %v", f, err)
		}
	}
	_, c2, stop2 := start(t, dir, nil)
	defer stop2()
	a, err := c2.Bucket("adopt").Object("o1").Attrs(t.Context())
	if err != nil || a.Metageneration != 1 {
		t.Fatalf("adopted object: %+v, %v", a, err)
	}
}
