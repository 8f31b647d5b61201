package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// base is the time the test traces are saved around (never time.Now: tests
// must not depend on the wall clock).
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func newDB(t testing.TB) *DB {
	t.Helper()
	db, err := Open(t.Context(), testutil.PG(t), Options{MaxConns: 4})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(db.Close)
	return db
}

func canvasID(b byte) traces.CanvasID {
	var c traces.CanvasID
	c[0], c[6], c[8], c[15] = b, 0x40, 0x80, b
	return c
}

// record returns a record saved at base+i seconds.
func record(c traces.CanvasID, i int, root traces.TLID, tlids ...traces.TLID) traces.Record {
	ts := base.Add(time.Duration(i) * time.Second)
	return traces.Record{
		Canvas:     c,
		ID:         traces.NewTraceID(ts),
		RootTLID:   root,
		TLIDs:      append([]traces.TLID{root}, tlids...),
		Timestamp:  ts,
		Generation: 1000 + int64(i),
		CustomTime: ts,
		Layers:     0,
	}
}

func put(t testing.TB, db *DB, rs ...traces.Record) {
	t.Helper()
	for _, r := range rs {
		p, err := db.PutTrace(t.Context(), r, r.CustomTime)
		if created := p.Created; err != nil || !created {
			t.Fatalf("PutTrace(%s) = %v, %v; want true, nil", r.ID, created, err)
		}
	}
}

func summary(r traces.Record) traces.Summary {
	return traces.Summary{ID: r.ID, Timestamp: r.Timestamp, RootTLID: r.RootTLID, Held: r.Held}
}

func count(t testing.TB, db *DB, sql string, args ...any) int {
	t.Helper()
	var n int
	if err := db.pool.QueryRow(t.Context(), sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

func TestPutTraceIdempotent(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	r := record(c, 0, 10, 20, 30, 20) // duplicate tlid on purpose
	put(t, db, r)
	for _, retry := range []traces.Record{r, func() traces.Record {
		changed := r
		changed.TLIDs = []traces.TLID{10, 99}
		changed.Generation-- // an older generation never replaces rows
		return changed
	}()} {
		p, err := db.PutTrace(t.Context(), retry, retry.CustomTime)
		if err != nil || p.Created {
			t.Fatalf("PutTrace(retry) = %+v, %v; want not created, nil", p, err)
		}
	}
	got, err := db.Get(t.Context(), c, r.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	want := r
	want.TLIDs = []traces.TLID{10, 20, 30}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Get after retries (-want +got):\n%s", d)
	}
	if n := count(t, db, `SELECT count(*) FROM trace_tlids`); n != 3 {
		t.Errorf("trace_tlids rows = %d, want 3", n)
	}
	if n := count(t, db, `SELECT count(*) FROM toplevels WHERE renew_after = $1`, r.CustomTime); n != 3 {
		t.Errorf("toplevels rows = %d, want 3", n)
	}
}

func TestPutTraceKeepsExistingToplevel(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	first, second := record(c, 0, 10), record(c, 60, 10, 11)
	put(t, db, first, second)
	var renew10, renew11 time.Time
	if err := db.pool.QueryRow(t.Context(), `SELECT
		(SELECT renew_after FROM toplevels WHERE canvas_id = $1 AND tlid = 10),
		(SELECT renew_after FROM toplevels WHERE canvas_id = $1 AND tlid = 11)`, [16]byte(c)).Scan(&renew10, &renew11); err != nil {
		t.Fatal(err)
	}
	if !renew10.Equal(first.CustomTime) || !renew11.Equal(second.CustomTime) {
		t.Errorf("renew_after = %v, %v; want %v, %v", renew10, renew11, first.CustomTime, second.CustomTime)
	}
}

// countingConn counts writes to the server: each round trip starts with one.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(b []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(b)
}

func TestPutTraceOneRoundTrip(t *testing.T) {
	t.Parallel()
	cfg, err := pgxpool.ParseConfig(testutil.PG(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 1
	var writes atomic.Int64
	dial := cfg.ConnConfig.DialFunc
	cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		return countingConn{conn, &writes}, err
	}
	db, err := openConfig(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	c := canvasID(1)
	put(t, db, record(c, 0, 1, 2, 3)) // the first use also prepares the statement
	for i := 1; i <= 3; i++ {
		before := writes.Load()
		put(t, db, record(c, i, 1, 2, 3, traces.TLID(100+i)))
		if n := writes.Load() - before; n != 1 {
			t.Errorf("PutTrace #%d took %d round trips, want 1", i, n)
		}
	}
	before := writes.Load()
	if _, err := db.Remove(t.Context(), c, traces.NewTraceID(base), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Remove(t.Context(), c, traces.NewTraceID(base), 1); err != nil {
		t.Fatal(err)
	}
	if n := writes.Load() - before; n != 3 { // prepare + execute, then execute
		t.Errorf("two Removes took %d round trips, want 3", n)
	}
}

func TestRecentNewestFirst(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c, other := canvasID(1), canvasID(2)
	var want []traces.Summary
	// Saved out of order: the list is ordered by trace ID (time), not insertion.
	for _, i := range []int{5, 0, 24, 3, 17, 8, 1, 22, 9, 14, 2, 19, 6, 11, 23, 4, 16, 7, 21, 12, 10, 20, 13, 18, 15} {
		r := record(c, i, 10)
		put(t, db, r)
		want = append(want, summary(r))
	}
	put(t, db, record(other, 100, 10), record(c, 100, 11)) // other canvas, other tlid
	slices.SortFunc(want, func(a, b traces.Summary) int { return b.Timestamp.Compare(a.Timestamp) })

	got, err := db.Recent(t.Context(), c, 10, 10)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want[:10], got); d != "" {
		t.Errorf("Recent(limit 10) (-want +got):\n%s", d)
	}
	got, err = db.Recent(t.Context(), c, 10, 100)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Recent(limit 100) (-want +got):\n%s", d)
	}
	got, err = db.Recent(t.Context(), c, 12345, 10)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("Recent(unknown tlid) = %v, %v; want empty, nil", got, err)
	}
	if _, err := db.Recent(t.Context(), c, 10, 0); !errors.Is(err, traces.ErrInvalid) {
		t.Errorf("Recent(limit 0) error = %v, want ErrInvalid", err)
	}
}

func TestRecentFunctionTLID(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	const handler, otherHandler, fn = 10, 11, 77
	a, b := record(c, 0, handler, fn), record(c, 1, otherHandler, fn)
	put(t, db, a, b, record(c, 2, handler))
	got, err := db.Recent(t.Context(), c, fn, 10)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]traces.Summary{summary(b), summary(a)}, got); d != "" {
		t.Errorf("Recent(function) (-want +got):\n%s", d)
	}
}

func TestRecentMany(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	// 200 toplevels: tlid k has k%13 traces; every trace also touches tlid 1000.
	var tlids []traces.TLID
	var rs []traces.Record
	for k := range 200 {
		tl := traces.TLID(k + 1)
		tlids = append(tlids, tl)
		for j := range k % 13 {
			rs = append(rs, record(c, k*100+j, tl, 1000))
		}
	}
	put(t, db, rs...)
	tlids = append(tlids, 1000, 5, 5) // duplicates are asked once
	const limit = 10
	got, err := db.RecentMany(t.Context(), c, tlids, limit)
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[traces.TLID][]traces.Summary)
	for _, tl := range tlids {
		if want[tl], err = db.Recent(t.Context(), c, tl, limit); err != nil {
			t.Fatal(err)
		}
	}
	if len(got) != 201 {
		t.Errorf("RecentMany returned %d toplevels, want 201", len(got))
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("RecentMany differs from Recent (-want +got):\n%s", d)
	}
	if n := len(got[12]); n != limit {
		t.Errorf("tlid 12 has %d traces, want %d", n, limit)
	}
	if s, ok := got[14]; !ok || s == nil || len(s) != 0 {
		t.Errorf("tlid 14 = %#v, want an empty slice", s)
	}
	if empty, err := db.RecentMany(t.Context(), c, nil, limit); err != nil || len(empty) != 0 {
		t.Errorf("RecentMany(nil) = %v, %v", empty, err)
	}
}

func TestGetFind(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	r := record(c, 0, 10, 20)
	r.Layers, r.CustomTime = 3, base.Add(-time.Hour)
	put(t, db, r)
	for name, get := range map[string]func() (traces.Record, error){
		"Get": func() (traces.Record, error) { return db.Get(t.Context(), c, r.ID) },
		"Find": func() (traces.Record, error) {
			rs, err := db.Find(t.Context(), r.ID, 10)
			if err != nil || len(rs) != 1 {
				return traces.Record{}, fmt.Errorf("%d records, %w", len(rs), err)
			}
			return rs[0], nil
		},
	} {
		got, err := get()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if d := cmp.Diff(r, got); d != "" {
			t.Errorf("%s (-want +got):\n%s", name, d)
		}
	}
	missing := traces.NewTraceID(base)
	if _, err := db.Get(t.Context(), c, missing); !errors.Is(err, traces.ErrNotFound) || !errors.Is(err, pgx.ErrNoRows) {
		t.Errorf("Get(missing) error = %v, want ErrNotFound wrapping pgx.ErrNoRows", err)
	}
	if _, err := db.Get(t.Context(), canvasID(2), r.ID); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("Get(other canvas) error = %v, want ErrNotFound", err)
	}
	if _, err := db.Find(t.Context(), missing, 10); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("Find(missing) error = %v, want ErrNotFound", err)
	}
}

// TestFindEveryCanvas: when several canvases hold the same trace ID (IDs
// may come from callers), Find returns each of them, by canvas ID, never
// silently one; limit bounds the list.
func TestFindEveryCanvas(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	r := record(canvasID(3), 0, 10)
	var want []traces.Record
	for _, c := range []byte{3, 1, 2} {
		r := r
		r.Canvas, r.RootTLID = canvasID(c), traces.TLID(c)
		r.TLIDs = []traces.TLID{r.RootTLID}
		put(t, db, r)
		want = append(want, r)
	}
	slices.SortFunc(want, func(a, b traces.Record) int { return bytes.Compare(a.Canvas[:], b.Canvas[:]) })
	got, err := db.Find(t.Context(), r.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Find (-want +got):\n%s", d)
	}
	if got, err := db.Find(t.Context(), r.ID, 2); err != nil || len(got) != 2 || got[0].Canvas != want[0].Canvas {
		t.Errorf("Find with limit 2 = %d records, %v; want the first 2", len(got), err)
	}
}

func TestRemoveGeneration(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	r := record(c, 0, 10, 20)
	keep := record(c, 1, 10)
	put(t, db, r, keep)
	// A notification about an older generation must not remove newer rows.
	if removed, err := db.Remove(t.Context(), c, r.ID, r.Generation-1); err != nil || removed {
		t.Fatalf("Remove(older generation) = %v, %v; want false, nil", removed, err)
	}
	if _, err := db.Get(t.Context(), c, r.ID); err != nil {
		t.Fatalf("Get after Remove(older generation): %v", err)
	}
	if removed, err := db.Remove(t.Context(), c, r.ID, r.Generation); err != nil || !removed {
		t.Fatalf("Remove(same generation) = %v, %v; want true, nil", removed, err)
	}
	if _, err := db.Get(t.Context(), c, r.ID); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("Get after Remove: %v, want ErrNotFound", err)
	}
	for tl, want := range map[traces.TLID][]traces.Summary{10: {summary(keep)}, 20: {}} {
		got, err := db.Recent(t.Context(), c, tl, 10)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("Recent(%d) after Remove (-want +got):\n%s", tl, d)
		}
	}
	if removed, err := db.Remove(t.Context(), c, r.ID, math.MaxInt64); err != nil || removed {
		t.Errorf("Remove again = %v, %v; want false, nil", removed, err)
	}
	if n := count(t, db, `SELECT count(*) FROM toplevels`); n != 2 {
		t.Errorf("toplevels rows = %d, want 2 (GC owns them)", n)
	}
}

func TestRemoveMany(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c1, c2 := canvasID(1), canvasID(2)
	a, b, newer, kept := record(c1, 0, 10, 11), record(c2, 1, 10), record(c1, 2, 10), record(c1, 3, 10)
	put(t, db, a, b, newer, kept)
	batch := []Deletion{
		{Canvas: c1, ID: a.ID, Generation: a.Generation},
		{Canvas: c2, ID: b.ID, Generation: b.Generation + 5},
		{Canvas: c1, ID: newer.ID, Generation: newer.Generation - 1}, // rows describe a newer object
		{Canvas: c1, ID: traces.NewTraceID(base), Generation: 1},     // never indexed
		{Canvas: c2, ID: a.ID, Generation: a.Generation},             // right ID, wrong canvas
		{Canvas: c1, ID: a.ID, Generation: a.Generation},             // repeated in the batch
	}
	for i, want := range []int{2, 0} { // a redelivered batch removes nothing and succeeds
		removed, err := db.RemoveMany(t.Context(), batch)
		if err != nil || removed != want {
			t.Errorf("RemoveMany #%d = %d, %v; want %d, nil", i+1, removed, err, want)
		}
	}
	got, err := db.RecentMany(t.Context(), c1, []traces.TLID{10, 11}, 10)
	if err != nil {
		t.Fatal(err)
	}
	want := map[traces.TLID][]traces.Summary{10: {summary(kept), summary(newer)}, 11: {}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("RecentMany after RemoveMany (-want +got):\n%s", d)
	}
	if n := count(t, db, `SELECT count(*) FROM trace_tlids WHERE canvas_id = $1`, [16]byte(c2)); n != 0 {
		t.Errorf("canvas 2 trace_tlids rows = %d, want 0", n)
	}
	if removed, err := db.RemoveMany(t.Context(), nil); err != nil || removed != 0 {
		t.Errorf("RemoveMany(nil) = %d, %v", removed, err)
	}
}

func TestTLIDHighBit(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	high := []traces.TLID{1 << 63, 1<<63 + 1, math.MaxUint64, math.MaxUint64 - 1}
	r := record(c, 0, math.MaxUint64, high...)
	put(t, db, r)
	got, err := db.Get(t.Context(), c, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := r
	want.TLIDs = []traces.TLID{1 << 63, 1<<63 + 1, math.MaxUint64 - 1, math.MaxUint64} // ordered by bit pattern
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("Get (-want +got):\n%s", d)
	}
	many, err := db.RecentMany(t.Context(), c, high, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, tl := range high {
		if d := cmp.Diff([]traces.Summary{summary(r)}, many[tl]); d != "" {
			t.Errorf("RecentMany[%d] (-want +got):\n%s", tl, d)
		}
		one, err := db.Recent(t.Context(), c, tl, 10)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff([]traces.Summary{summary(r)}, one); d != "" {
			t.Errorf("Recent(%d) (-want +got):\n%s", tl, d)
		}
	}
	var stored int64
	if err := db.pool.QueryRow(t.Context(), `SELECT root_tlid FROM traces`).Scan(&stored); err != nil || stored != -1 {
		t.Errorf("stored root_tlid = %d, %v; want -1 (the bit pattern of 2^64-1)", stored, err)
	}
}

func TestErrorTranslation(t *testing.T) {
	t.Parallel()
	db := newDB(t)
	c := canvasID(1)
	r := record(c, 0, 10)
	put(t, db, r)
	_, err := db.pool.Exec(t.Context(), `INSERT INTO toplevels (canvas_id, tlid, renew_after) VALUES ($1, 10, $2)`, [16]byte(c), base)
	if err = translate(err); !errors.Is(err, traces.ErrConflict) {
		t.Errorf("duplicate insert: %v, want ErrConflict", err)
	}

	// Nothing listens on a port just released.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = Open(t.Context(), "postgres://postgres@"+addr+"/x", Options{ConnectTimeout: time.Second})
	if !errors.Is(err, traces.ErrUnavailable) {
		t.Errorf("Open(closed port) error = %v, want ErrUnavailable", err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	if _, err := db.Recent(ctx, c, 10, 10); !errors.Is(err, traces.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Recent(expired ctx) error = %v, want ErrUnavailable wrapping DeadlineExceeded", err)
	}
}
