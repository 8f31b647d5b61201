package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// Reads are the index read figures through HTTP: one row per query of
// readQueries. In JSON the queries are keys of the object beside
// index_rows and seed_seconds.
type Reads struct {
	Rows     int     // index rows seeded
	SeedTime float64 // seconds the seeding took
	Queries  []Query
}

// Query is one row of the reads table.
type Query struct {
	Key   string // its name in JSON
	Label string // its name in the text table
	Result
}

// readEnv is what a read query calls.
type readEnv struct {
	cl *client.Client
	db *index.DB
}

// readQueries are the rows of the reads table, measured one after another
// in this order, one request at a time; a new row is one more entry.
var readQueries = []struct {
	key, label string
	batch      bool // a fifth of the calls: each asks for 200 toplevels
	call       func(ctx context.Context, e readEnv, i int) error
}{
	{"latest10_toplevel_10000_traces", "latest 10, toplevel with 10,000 traces", false, func(ctx context.Context, e readEnv, i int) error {
		list, err := e.cl.Recent(ctx, queriedCanvas(), client.TLID(1+i%seedBig), 10)
		if err == nil && len(list) != 10 {
			err = fmt.Errorf("latest 10 of a big toplevel: got %d", len(list))
		}
		return err
	}},
	{"latest10_toplevel_25_traces", "latest 10, toplevel with 25 traces", false, func(ctx context.Context, e readEnv, i int) error {
		list, err := e.cl.Recent(ctx, queriedCanvas(), client.TLID(seedSmallBase+(i*7919)%seedSmall), 10)
		if err == nil && len(list) != 10 {
			err = fmt.Errorf("latest 10 of a small toplevel: got %d", len(list))
		}
		return err
	}},
	{"batch_200_toplevels", "latest 10 of 200 toplevels (batch)", true, func(ctx context.Context, e readEnv, i int) error {
		m, err := e.cl.RecentMany(ctx, queriedCanvas(), batchTLIDs(i), 10)
		if err == nil && len(m) != 200 {
			err = fmt.Errorf("batch: got %d toplevels", len(m))
		}
		return err
	}},
	// The same batch straight from index.DB, the query the gateway runs:
	// what the gateway's HTTP and encoding add is the batch row minus this
	// one.
	{"batch_200_toplevels_index_only", "same batch, index.DB.RecentManyKept in process (no HTTP, no JSON)", true, func(ctx context.Context, e readEnv, i int) error {
		var tlids []traces.TLID
		for _, t := range batchTLIDs(i) {
			tlids = append(tlids, traces.TLID(t))
		}
		m, err := e.db.RecentManyKept(ctx, seedCanvas(0), tlids, 10, judged())
		if err == nil && len(m) != 200 {
			err = fmt.Errorf("batch: got %d toplevels", len(m))
		}
		return err
	}},
	// The latest-10 query the gateway runs, in process; and the floor under
	// it, the plain newest-10 scan without judging each trace.
	{"latest10_toplevel_10000_traces_index_only", "latest 10 of a big toplevel, index.DB.RecentKept in process", false, func(ctx context.Context, e readEnv, i int) error {
		list, err := e.db.RecentKept(ctx, seedCanvas(0), traces.TLID(1+i%seedBig), 10, judged())
		if err == nil && len(list) != 10 {
			err = fmt.Errorf("latest 10 of a big toplevel: got %d", len(list))
		}
		return err
	}},
	{"latest10_toplevel_10000_traces_sql_floor", "latest 10 of a big toplevel, index.DB.Recent (index-only scan, not judged)", false, func(ctx context.Context, e readEnv, i int) error {
		list, err := e.db.Recent(ctx, seedCanvas(0), traces.TLID(1+i%seedBig), 10)
		if err == nil && len(list) != 10 {
			err = fmt.Errorf("latest 10 of a big toplevel: got %d", len(list))
		}
		return err
	}},
}

// judged is the policy the embedded gateway judges listed traces under
// (serve's defaults: 7 days, keep 10).
func judged() index.Retention {
	return index.Retention{Period: 7 * 24 * time.Hour, Keep: 10, Now: time.Now()}
}

// queriedCanvas is the seeded canvas the reads ask about.
func queriedCanvas() client.CanvasID { return client.CanvasID(seedCanvas(0).String()) }

// batchTLIDs are the 200 toplevels of batch call i: the ten big ones and
// 190 small ones.
func batchTLIDs(i int) []client.TLID {
	tlids := make([]client.TLID, 0, 200)
	for t := range seedBig {
		tlids = append(tlids, client.TLID(1+t))
	}
	for k := range 190 {
		tlids = append(tlids, client.TLID(seedSmallBase+(i*190+k)%seedSmall))
	}
	return tlids
}

// measureReads runs readQueries.
func measureReads(ctx context.Context, cl *client.Client, db *index.DB, b bounds) Reads {
	var r Reads
	for _, q := range readQueries {
		qb := b
		if q.batch {
			qb.maxOps = b.maxOps / 5
		}
		res := runLoad(ctx, 1, qb, func(ctx context.Context, i int) error { return q.call(ctx, readEnv{cl, db}, i) })
		r.Queries = append(r.Queries, Query{Key: q.key, Label: q.label, Result: res})
	}
	return r
}

// Query returns the figures of the query named key, if it ran.
func (r *Reads) Query(key string) (Result, bool) {
	for _, q := range r.Queries {
		if q.Key == key {
			return q.Result, true
		}
	}
	return Result{}, false
}

// MarshalJSON writes {"index_rows", "seed_seconds", "<key>": {…}, …}.
func (r Reads) MarshalJSON() ([]byte, error) {
	b := []byte(`{"index_rows":`)
	b = strconv.AppendInt(b, int64(r.Rows), 10)
	b = append(b, `,"seed_seconds":`...)
	v, err := json.Marshal(r.SeedTime)
	if err != nil {
		return nil, err
	}
	b = append(b, v...)
	for _, q := range r.Queries {
		k, _ := json.Marshal(q.Key)
		v, err := json.Marshal(q.Result)
		if err != nil {
			return nil, err
		}
		b = append(append(append(append(b, ','), k...), ':'), v...)
	}
	return append(b, '}'), nil
}

// UnmarshalJSON reads what MarshalJSON writes; queries come back in
// readQueries' order with their labels, unknown ones after them.
func (r *Reads) UnmarshalJSON(b []byte) error {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return err
	}
	*r = Reads{}
	var errs []error
	take := func(key, label string) {
		v, ok := m[key]
		if !ok {
			return
		}
		delete(m, key)
		q := Query{Key: key, Label: label}
		errs = append(errs, json.Unmarshal(v, &q.Result))
		r.Queries = append(r.Queries, q)
	}
	if v, ok := m["index_rows"]; ok {
		errs = append(errs, json.Unmarshal(v, &r.Rows))
		delete(m, "index_rows")
	}
	if v, ok := m["seed_seconds"]; ok {
		errs = append(errs, json.Unmarshal(v, &r.SeedTime))
		delete(m, "seed_seconds")
	}
	for _, q := range readQueries {
		take(q.key, q.label)
	}
	rest := make([]string, 0, len(m))
	for k := range m {
		rest = append(rest, k)
	}
	slices.Sort(rest)
	for _, k := range rest {
		take(k, k)
	}
	return errors.Join(errs...)
}
