package index

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// BenchmarkIndexScale measures the index at sizes past one comfortable
// table: for each trace count of -index.rows it seeds a fresh database with
// COPY and reports latest-10 (a toplevel with 10,000 traces and one with
// 20), the 200-toplevel batch, save's index write (PutTrace into a random
// canvas), GC discovery (DueCanvases with a fixed 1,000 due toplevels, and
// Keepers of one due canvas), the tables' and indexes' sizes, and VACUUM
// after 5% of the rows were removed (as deletion notifications do).
// -index.partitions N makes traces and trace_tlids hash-partitioned by
// canvas_id into N partitions first, to compare. Each size reseeds (10M
// rows take a few minutes); nothing is kept on the server.
//
//	go test ./internal/index/ -run '^$' -bench IndexScale -benchtime 3000x -timeout 60m \
//	    -index.rows 1000000,10000000 -index.partitions 0
//
// Latencies on a shared machine vary from run to run; BenchmarkIndexAB
// compares two layouts or sizes in one run, query by query.
var (
	scaleRows       = flag.String("index.rows", "1000000", "BenchmarkIndexScale: comma-separated trace counts to seed")
	scalePartitions = flag.Int("index.partitions", 0, "BenchmarkIndexScale: hash-partition traces and trace_tlids by canvas_id into this many partitions (0: plain tables)")
)

// The seeded shape: every canvas has scaleToplevels toplevels of
// scalePerToplevel traces (one trace_tlids row each); the first canvas also
// has a hot toplevel of scaleHot traces. The canvas count grows with the
// size, so per-canvas work stays the same and only the table grows.
const (
	scaleToplevels   = 500
	scalePerToplevel = 20
	scaleHot         = 10_000
	scaleHotTLID     = 1_000_000
	scaleDue         = 1000 // due toplevels, spread over scaleDueCanvases canvases
	scaleDueCanvases = 100
	scaleBatch       = 200
)

func BenchmarkIndexScale(b *testing.B) {
	for _, s := range strings.Split(*scaleRows, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < scaleToplevels*scalePerToplevel {
			b.Fatalf("-index.rows %q: want counts of at least %d", s, scaleToplevels*scalePerToplevel)
		}
		b.Run(fmt.Sprintf("rows=%d/partitions=%d", n, *scalePartitions), func(b *testing.B) { benchScale(b, n, *scalePartitions) })
	}
}

// scaleCanvas is the i-th seeded canvas; IDs grow with i.
func scaleCanvas(i int) traces.CanvasID {
	var c traces.CanvasID
	copy(c[:], []byte{0x5c, 0xa1, 0xe0, 0, 0, 0, 0x40, 0, 0x80})
	binary.BigEndian.PutUint32(c[12:], uint32(i))
	return c
}

// scaleDB is one seeded database.
type scaleDB struct {
	url      string
	conn     *pgx.Conn
	db       *DB
	canvases int
}

// seedScaleDB creates a database (with partitioned tables if partitions >
// 0), seeds about rows traces, freezes and analyzes it, and logs sizes.
func seedScaleDB(b *testing.B, rows, partitions int) *scaleDB {
	ctx := b.Context()
	s := &scaleDB{url: testutil.PG(b)}
	var err error
	if s.conn, err = pgx.Connect(ctx, s.url); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.conn.Close(context.Background()) })
	if partitions > 0 {
		if err := partitionTables(ctx, s.conn, partitions); err != nil {
			b.Fatal(err)
		}
	}
	s.canvases = max(1, (rows-scaleHot)/(scaleToplevels*scalePerToplevel))
	start := time.Now()
	if err := seedScale(ctx, s.url, s.canvases); err != nil {
		b.Fatal(err)
	}
	seeded := time.Since(start)
	start = time.Now()
	if _, err := s.conn.Exec(ctx, `VACUUM (FREEZE, ANALYZE) traces, trace_tlids, toplevels`); err != nil {
		b.Fatal(err)
	}
	b.Logf("partitions=%d: seeded %d traces in %d canvases in %s, VACUUM (FREEZE, ANALYZE) %s", partitions,
		s.canvases*scaleToplevels*scalePerToplevel+scaleHot, s.canvases, seeded.Round(time.Second), time.Since(start).Round(time.Second))
	sizes(b, s.conn)
	if s.db, err = Open(ctx, s.url, Options{MaxConns: 4}); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.db.Close)
	return s
}

// scaleQuery is one measured query; i varies its arguments.
type scaleQuery struct {
	name string
	run  func(ctx context.Context, s *scaleDB, i int) error
}

// scaleQueries are the measured queries, the same on every layout.
var scaleQueries = []scaleQuery{
	{"latest10_toplevel_10000", func(ctx context.Context, s *scaleDB, _ int) error {
		return expectN(s.db.Recent(ctx, scaleCanvas(0), scaleHotTLID, 10))
	}},
	{"latest10_toplevel_20", func(ctx context.Context, s *scaleDB, i int) error {
		return expectN(s.db.Recent(ctx, scaleCanvas(i*7919%s.canvases), traces.TLID(1+i%scaleToplevels), 10))
	}},
	{"batch_200_toplevels", func(ctx context.Context, s *scaleDB, i int) error {
		tlids := make([]traces.TLID, scaleBatch)
		for k := range tlids {
			tlids[k] = traces.TLID(1 + (i+k)%scaleToplevels)
		}
		m, err := s.db.RecentMany(ctx, scaleCanvas(i*7919%s.canvases), tlids, 10)
		if err == nil && len(m) != scaleBatch {
			err = fmt.Errorf("batch: %d toplevels", len(m))
		}
		return err
	}},
	{"save_index_write", func(ctx context.Context, s *scaleDB, i int) error {
		ts := scaleBase.Add(48*time.Hour + time.Duration(i)*time.Millisecond)
		r := traces.Record{Canvas: scaleCanvas(i * 104729 % s.canvases), ID: traces.NewTraceID(ts),
			RootTLID: traces.TLID(1 + i%scaleToplevels), Timestamp: ts, Generation: int64(i), CustomTime: ts}
		_, err := s.db.PutTrace(ctx, r, ts)
		return err
	}},
	{"gc_due_canvases", func(ctx context.Context, s *scaleDB, _ int) error {
		cs, err := s.db.DueCanvases(ctx, scaleDueBefore)
		if err == nil && len(cs) != min(scaleDueCanvases, s.canvases) {
			err = fmt.Errorf("due canvases: %d", len(cs))
		}
		return err
	}},
	{"gc_keepers_of_a_due_canvas", func(ctx context.Context, s *scaleDB, i int) error {
		ks, err := s.db.Keepers(ctx, scaleCanvas(i%min(scaleDueCanvases, s.canvases)), scaleDueBefore, 10, nil)
		if err == nil && len(ks.Toplevels) == 0 {
			err = fmt.Errorf("keepers: no due toplevel")
		}
		return err
	}},
}

// scaleDueBefore makes the seeded due toplevels (renew_after scaleBase)
// due and no other.
var scaleDueBefore = scaleBase.Add(time.Hour)

func benchScale(b *testing.B, rows, partitions int) {
	s := seedScaleDB(b, rows, partitions)
	i := 0
	for _, q := range scaleQueries {
		b.Run(q.name, func(b *testing.B) {
			var lat []time.Duration
			for b.Loop() {
				i++
				t := time.Now()
				if err := q.run(b.Context(), s, i); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t))
			}
			reportLatency(b, lat, "")
		})
	}
	vacuum(b, s.conn, partitions)
}

// BenchmarkIndexAB seeds two databases, -index.a and -index.b (each
// ROWS/PARTITIONS), and runs each query against both in alternation, so a
// busy machine slows both alike: 10000000/0 against 10000000/16 compares
// plain tables with tables hash-partitioned by canvas_id, and 1000000/0
// against 10000000/0 shows what grows with the table. Then it compares
// VACUUM as BenchmarkIndexScale does.
//
//	go test ./internal/index/ -run '^$' -bench IndexAB -benchtime 3000x -timeout 60m -index.a 10000000/0 -index.b 10000000/16
func BenchmarkIndexAB(b *testing.B) {
	type layout struct{ rows, partitions int }
	parse := func(flagName, v string) layout {
		var l layout
		if _, err := fmt.Sscanf(v, "%d/%d", &l.rows, &l.partitions); err != nil || l.rows < scaleToplevels*scalePerToplevel || l.partitions < 0 {
			b.Fatalf("-%s %q: want ROWS/PARTITIONS, e.g. 10000000/16", flagName, v)
		}
		return l
	}
	la, lb := parse("index.a", *abA), parse("index.b", *abB)
	b.Run(fmt.Sprintf("a=%d_%d/b=%d_%d", la.rows, la.partitions, lb.rows, lb.partitions), func(b *testing.B) {
		a, bb := seedScaleDB(b, la.rows, la.partitions), seedScaleDB(b, lb.rows, lb.partitions)
		i := 0
		for _, q := range scaleQueries {
			b.Run(q.name, func(b *testing.B) {
				var latA, latB []time.Duration
				for b.Loop() {
					i++
					order := []*scaleDB{a, bb}
					if i%2 == 1 { // alternate which goes first
						order = []*scaleDB{bb, a}
					}
					for _, s := range order {
						t := time.Now()
						if err := q.run(b.Context(), s, i); err != nil {
							b.Fatal(err)
						}
						if s == a {
							latA = append(latA, time.Since(t))
						} else {
							latB = append(latB, time.Since(t))
						}
					}
				}
				reportLatency(b, latA, "a-")
				reportLatency(b, latB, "b-")
			})
		}
		vacuum(b, a.conn, la.partitions)
		vacuum(b, bb.conn, lb.partitions)
	})
}

var (
	abA = flag.String("index.a", "10000000/0", "BenchmarkIndexAB: the first database, ROWS/PARTITIONS")
	abB = flag.String("index.b", "10000000/16", "BenchmarkIndexAB: the second database, ROWS/PARTITIONS")
)

// scaleBase is the seeded traces' time.
var scaleBase = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

func expectN(s []traces.Summary, err error) error {
	if err == nil && len(s) != 10 {
		err = fmt.Errorf("got %d traces, want 10", len(s))
	}
	return err
}

func reportLatency(b *testing.B, lat []time.Duration, prefix string) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.5), prefix+"p50-µs")
	b.ReportMetric(q(0.99), prefix+"p99-µs")
	b.ReportMetric(0, "ns/op") // the percentiles say more than a mean
}

// partitionTables replaces traces and trace_tlids (empty) by tables
// hash-partitioned by canvas_id into n partitions, with the same columns,
// keys and indexes.
func partitionTables(ctx context.Context, conn *pgx.Conn, n int) error {
	stmts := []string{
		`DROP TABLE traces, trace_tlids`,
		`CREATE TABLE traces (
		  canvas_id uuid NOT NULL, trace_id uuid NOT NULL, root_tlid bigint NOT NULL, tlids bigint[] NOT NULL,
		  ts timestamptz NOT NULL, generation bigint NOT NULL, custom_time timestamptz NOT NULL,
		  layers int NOT NULL DEFAULT 0, held_at timestamptz, hold_reason text,
		  pending timestamptz[] NOT NULL DEFAULT '{}',
		  PRIMARY KEY (canvas_id, trace_id)) PARTITION BY HASH (canvas_id)`,
		`CREATE INDEX traces_by_id ON traces (trace_id)`,
		`CREATE INDEX traces_pending ON traces ((pending[1])) WHERE cardinality(pending) > 0`,
		`CREATE TABLE trace_tlids (
		  canvas_id uuid NOT NULL, tlid bigint NOT NULL, trace_id uuid NOT NULL, ts timestamptz NOT NULL,
		  root_tlid bigint NOT NULL, held boolean NOT NULL DEFAULT false,
		  PRIMARY KEY (canvas_id, tlid, trace_id) INCLUDE (ts, root_tlid, held)) PARTITION BY HASH (canvas_id)`,
	}
	for i := range n {
		for _, t := range []string{"traces", "trace_tlids"} {
			stmts = append(stmts, fmt.Sprintf(`CREATE TABLE %s_p%d PARTITION OF %s FOR VALUES WITH (MODULUS %d, REMAINDER %d)`, t, i, t, n, i))
		}
	}
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			return fmt.Errorf("%s: %w", s, err)
		}
	}
	return nil
}

// seedScale COPYs the seeded traces into traces and trace_tlids (two
// connections at once, in primary-key order) and their toplevels.
func seedScale(ctx context.Context, url string, canvases int) error {
	type row struct {
		c    traces.CanvasID
		tlid int64
		id   traces.TraceID
		ts   time.Time
	}
	each := func(emit func(r row)) {
		n := 0
		one := func(c traces.CanvasID, tlid int64) {
			ts := scaleBase.Add(time.Duration(n) * time.Millisecond)
			emit(row{c, tlid, traces.NewTraceID(ts), ts})
			n++
		}
		for ci := range canvases {
			c := scaleCanvas(ci)
			for t := 1; t <= scaleToplevels; t++ {
				for range scalePerToplevel {
					one(c, int64(t))
				}
			}
			if ci == 0 {
				for range scaleHot {
					one(c, scaleHotTLID)
				}
			}
		}
	}
	const pgTime = "2006-01-02 15:04:05.000Z07:00"
	g, gctx := errgroup.WithContext(ctx)
	copyRows := func(table, cols string, line func(b []byte, r row) []byte) {
		g.Go(func() error {
			return copyCSV(gctx, url, table, cols, func(w func([]byte) error) error {
				buf := make([]byte, 0, 1<<20)
				var err error
				each(func(r row) {
					if err != nil {
						return
					}
					buf = line(buf, r)
					if len(buf) > 1<<20-256 {
						err, buf = w(buf), buf[:0]
					}
				})
				if err != nil {
					return err
				}
				return w(buf)
			})
		})
	}
	copyRows("traces", "canvas_id, trace_id, root_tlid, tlids, ts, generation, custom_time", func(b []byte, r row) []byte {
		ts := r.ts.Format(pgTime)
		return fmt.Appendf(b, "%s,%s,%d,{%d},%s,1,%s\n", r.c, r.id, r.tlid, r.tlid, ts, ts)
	})
	copyRows("trace_tlids", "canvas_id, tlid, trace_id, ts, root_tlid", func(b []byte, r row) []byte {
		return fmt.Appendf(b, "%s,%d,%s,%s,%d\n", r.c, r.tlid, r.id, r.ts.Format(pgTime), r.tlid)
	})
	// Toplevels: fresh, except scaleDue spread over the first
	// scaleDueCanvases canvases, due since scaleBase.
	g.Go(func() error {
		return copyCSV(gctx, url, "toplevels", "canvas_id, tlid, renew_after", func(w func([]byte) error) error {
			var buf []byte
			perCanvas := scaleDue / min(scaleDueCanvases, canvases)
			for ci := range canvases {
				for t := 1; t <= scaleToplevels; t++ {
					at := scaleBase.Add(72 * time.Hour)
					if ci < scaleDueCanvases && t <= perCanvas {
						at = scaleBase
					}
					buf = fmt.Appendf(buf, "%s,%d,%s\n", scaleCanvas(ci), t, at.Format(pgTime))
				}
				if len(buf) > 1<<20 {
					if err := w(buf); err != nil {
						return err
					}
					buf = buf[:0]
				}
			}
			buf = fmt.Appendf(buf, "%s,%d,%s\n", scaleCanvas(0), scaleHotTLID, scaleBase.Add(72*time.Hour).Format(pgTime))
			return w(buf)
		})
	})
	return g.Wait()
}

// copyCSV COPYs the CSV lines produce writes into table.
func copyCSV(ctx context.Context, url, table, cols string, produce func(w func([]byte) error) error) error {
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	pr, pw := io.Pipe()
	go func() {
		pw.CloseWithError(produce(func(b []byte) error { _, err := pw.Write(b); return err }))
	}()
	_, err = conn.PgConn().CopyFrom(ctx, pr, "COPY "+table+" ("+cols+") FROM STDIN WITH (FORMAT csv)")
	pr.CloseWithError(io.ErrClosedPipe)
	if err != nil {
		return fmt.Errorf("copy %s: %w", table, err)
	}
	return nil
}

// sizes logs and reports the heap and index sizes of both tables (summed
// over partitions).
func sizes(b *testing.B, conn *pgx.Conn) {
	for _, t := range []string{"traces", "trace_tlids"} {
		var heap, idx int64
		var biggest int64
		err := conn.QueryRow(b.Context(), `
SELECT COALESCE(sum(pg_table_size(relid)), 0)::bigint, COALESCE(sum(pg_indexes_size(relid)), 0)::bigint,
       COALESCE(max(pg_total_relation_size(relid)), 0)::bigint
FROM (SELECT relid FROM pg_partition_tree($1::regclass) WHERE isleaf
      UNION SELECT $1::regclass WHERE (SELECT relkind FROM pg_class WHERE oid = $1::regclass) = 'r') p`, t).Scan(&heap, &idx, &biggest)
		if err != nil {
			b.Fatal(err)
		}
		b.Logf("%-11s heap %5d MiB, indexes %5d MiB, largest table or partition %5d MiB", t, heap>>20, idx>>20, biggest>>20)
		b.ReportMetric(float64(heap>>20), t+"-heap-MiB")
		b.ReportMetric(float64(idx>>20), t+"-index-MiB")
	}
}

// vacuum removes 5% of the traces (every 20th of each toplevel, as their
// deletion notifications would) and times VACUUM of both tables, and of
// the largest unit autovacuum works on (the table, or one partition).
func vacuum(b *testing.B, conn *pgx.Conn, partitions int) {
	ctx := b.Context()
	start := time.Now()
	if _, err := conn.Exec(ctx, `
WITH d AS (
  DELETE FROM traces WHERE get_byte(uuid_send(trace_id), 15) % 20 = 0 RETURNING canvas_id, trace_id, tlids
)
DELETE FROM trace_tlids tt USING d, unnest(d.tlids) AS u(tlid)
WHERE tt.canvas_id = d.canvas_id AND tt.tlid = u.tlid AND tt.trace_id = d.trace_id`); err != nil {
		b.Fatal(err)
	}
	deleted := time.Since(start)
	// The unit autovacuum works on: the table, or one partition (of each
	// table) — measured first, while it has its dead rows.
	unitSQL := `VACUUM traces, trace_tlids`
	if partitions > 0 {
		unitSQL = `VACUUM traces_p0, trace_tlids_p0`
	}
	start = time.Now()
	if _, err := conn.Exec(ctx, unitSQL); err != nil {
		b.Fatal(err)
	}
	unit := time.Since(start)
	all := unit
	if partitions > 0 {
		start = time.Now()
		if _, err := conn.Exec(ctx, `VACUUM traces, trace_tlids`); err != nil {
			b.Fatal(err)
		}
		all += time.Since(start)
	}
	b.Logf("partitions=%d: deleted 5%% in %s; VACUUM of both tables %s; of one table or partition pair %s", partitions, deleted.Round(time.Millisecond),
		all.Round(time.Millisecond), unit.Round(time.Millisecond))
	b.ReportMetric(all.Seconds(), "vacuum-s")
}
