package bench

import (
	"fmt"
	"math"
	"strconv"
	"time"
)

// TargetRow is one target next to what the run measured, as the report
// prints it.
type TargetRow struct {
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Goal     string `json:"goal"`
	Met      string `json:"met"` // "yes", "NO" or "n/a"
}

// Goal is what a figure must reach: Op ">=", "<=" or "<" Limit, a number
// in Unit ("x" for a ratio, "ms", "MiB", "" for a plain count or rate).
type Goal struct {
	Op    string
	Limit float64
	Unit  string
}

// Met reports whether v reaches the goal. NaN never does.
func (g Goal) Met(v float64) bool {
	switch g.Op {
	case ">=":
		return v >= g.Limit
	case "<=":
		return v <= g.Limit
	case "<":
		return v < g.Limit
	case ">":
		return v > g.Limit
	}
	return false
}

// String renders the goal as the targets table shows it: ">= 0.90x",
// "<= 1 ms", ">= 20,000", "< 300 MiB".
func (g Goal) String() string {
	var n string
	switch g.Unit {
	case "x":
		n = fmt.Sprintf("%.2fx", g.Limit)
	case "":
		n = thousands(g.Limit)
	default:
		n = strconv.FormatFloat(g.Limit, 'f', -1, 64) + " " + g.Unit
	}
	return g.Op + " " + n
}

// thousands renders a whole number with comma separators.
func thousands(v float64) string {
	s := strconv.FormatFloat(math.Round(v), 'f', 0, 64)
	neg := s[0] == '-'
	if neg {
		s = s[1:]
	}
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		return "-" + s
	}
	return s
}

// figure is one measured value of a target: value is compared with the
// goal, shown is how the measured column prints it, label (when set)
// names the row instead of the target's name.
type figure struct {
	label string
	value float64
	shown string
}

// target is one goal of the bench. figures returns what the report
// measured for it, one row each (a target measured per storage has one
// per stage); none prints one "n/a" row under name.
type target struct {
	name    string
	goal    Goal
	figures func(r *Report) []figure
}

// targets is the table of goals the report is held to, in the order it
// prints them: the one place where a goal is stated. Adding a target, or a
// goal to another figure, is adding an entry here.
var targets = []target{
	{"gateway CPU per 16 KiB save / storage client CPU per upload", Goal{"<=", 1.15, "x"}, func(r *Report) []figure {
		return cpuRatios(r, 16, "gateway CPU per 16 KiB save / storage client CPU per 16 KiB upload")
	}},
	{"gateway CPU per 256 KiB save / storage client CPU per upload", Goal{"<=", 1.60, "x"}, func(r *Report) []figure {
		return cpuRatios(r, 256, "gateway CPU per 256 KiB save / storage client CPU per 256 KiB upload")
	}},
	{"gateway saves/s vs raw upload, 16 KiB, c=64, emulator on disk", Goal{">=", 0.95, "x"}, func(r *Report) []figure {
		return rateRatios(r, "disk", []int{16}, []int{64})
	}},
	{"gateway saves/s vs raw upload, every size at c>=16, emulator on disk", Goal{">=", 0.90, "x"}, func(r *Report) []figure {
		return rateRatios(r, "disk", saveSizes, []int{16, 64})
	}},
	{"gateway p50 - naive p50, 16 KiB, c=1, emulator on tmpfs", Goal{"<=", 0.5, "ms"}, func(r *Report) []figure {
		for _, st := range r.Stages {
			if c, ok := st.cell(16, 1); ok && st.Storage == "tmpfs" && c.Naive != nil && c.Naive.Ops > 0 && c.Gateway.Ops > 0 {
				d := float64(c.Gateway.P50-c.Naive.P50) / float64(time.Millisecond)
				return []figure{{"", d, fmt.Sprintf("%+.2f ms (%s vs %s)", d, ms(c.Gateway.P50), ms(c.Naive.P50))}}
			}
		}
		return nil
	}},
	{"HTTP latest-10 p99 / the same query in process", Goal{"<=", 1.30, "x"}, func(r *Report) []figure {
		return p99Ratio(r, "latest10_toplevel_10000_traces", "latest10_toplevel_10000_traces_index_only",
			"HTTP latest-10 p99 / index.DB.RecentKept p99 in process, toplevel with 10,000 traces")
	}},
	{"HTTP batch of 200 toplevels p99 / the same query in process", Goal{"<=", 1.30, "x"}, func(r *Report) []figure {
		return p99Ratio(r, "batch_200_toplevels", "batch_200_toplevels_index_only",
			"HTTP batch of 200 toplevels p99 / index.DB.RecentManyKept p99 in process")
	}},
	{"HTTP latest-10 p99 at 1M rows", Goal{"<=", 1, "ms"}, func(r *Report) []figure {
		return p99(r, "latest10_toplevel_10000_traces", fmt.Sprintf("HTTP latest-10 p99, toplevel with 10,000 traces, %d rows", r.seededRows()))
	}},
	{"HTTP latest-10 p99, toplevel with 25 traces", Goal{"<=", 1, "ms"}, func(r *Report) []figure {
		return p99(r, "latest10_toplevel_25_traces", "HTTP latest-10 p99, toplevel with 25 traces")
	}},
	{"HTTP batch of 200 toplevels p99", Goal{"<=", 6, "ms"}, func(r *Report) []figure {
		return p99(r, "batch_200_toplevels", "HTTP batch of 200 toplevels p99")
	}},
	{"saves p99 during GC / without", Goal{"<=", 1.20, "x"}, func(r *Report) []figure {
		g := r.GC
		if g == nil || g.SavesWithout.Ops == 0 {
			return nil
		}
		return []figure{{"saves p99 during GC / without (16 KiB, c=16, disk)", g.P99Ratio,
			fmt.Sprintf("%.2fx (%s vs %s)", g.P99Ratio, ms(g.SavesDuring.P99), ms(g.SavesWithout.P99))}}
	}},
	{"notify deletions/s through the consumer (in-process queue)", Goal{">=", 20_000, ""}, func(r *Report) []figure {
		n := r.Notify
		if n == nil || n.Queue.Applied == 0 {
			return nil
		}
		q := n.Queue
		shown := fmt.Sprintf("%.0f", q.PerSec)
		if q.Applied < int64(q.Messages) {
			shown += fmt.Sprintf(" (%d/%d in %.0fs)", q.Applied, q.Messages, q.Secs)
		}
		return []figure{{"notify deletions/s, notify.Queue -> decide -> batch -> commit -> ack", q.PerSec, shown}}
	}},
	{"notify on the official Pub/Sub emulator / bare Receive+Ack", Goal{">=", 0.95, "x"}, func(r *Report) []figure {
		n := r.Notify
		if n == nil || n.Emulator.Applied == 0 || n.Emulator.BarePerSec <= 0 {
			return nil
		}
		e := n.Emulator
		v := e.PerSec / e.BarePerSec
		return []figure{{"notify on the official Pub/Sub emulator / a bare Receive+Ack there", v,
			fmt.Sprintf("%.2fx (%.0f vs %.0f/s)", v, e.PerSec, e.BarePerSec)}}
	}},
	{"gateway peak RSS, c=64, 256 KiB", Goal{"<", 300, "MiB"}, func(r *Report) []figure {
		peak := 0.0
		for _, st := range r.Stages {
			if c, ok := st.cell(256, 64); ok {
				peak = max(peak, c.GwPeakMiB)
			}
		}
		if peak == 0 {
			return nil
		}
		return []figure{{"", peak, fmt.Sprintf("%.0f MiB", peak)}}
	}},
}

// cpuRatios is, for every stage and concurrency, the gateway's CPU per
// save of size KiB over the storage client's own CPU per raw upload of
// the same stored bytes (measured in the bench process).
func cpuRatios(r *Report, size int, label string) []figure {
	var out []figure
	for _, st := range r.Stages {
		for _, c := range st.Cells {
			if c.SizeKiB != size || c.GwCPU1k == 0 {
				continue
			}
			f := figure{label: fmt.Sprintf("%s, c=%d, %s", label, c.Conc, st.Storage), value: math.NaN(), shown: "n/a"}
			if c.RawCPU1k > 0 {
				f.value = c.GwCPU1k / c.RawCPU1k
				f.shown = fmt.Sprintf("%.2fx (%.3f vs %.3f ms)", f.value, c.GwCPU1k, c.RawCPU1k)
			}
			out = append(out, f)
		}
	}
	return out
}

// rateRatios is the gateway's saves/s over the raw upload's for the cells
// of storage with the given sizes and concurrencies.
func rateRatios(r *Report, storage string, sizes, concs []int) []figure {
	var out []figure
	for _, st := range r.Stages {
		if st.Storage != storage {
			continue
		}
		for _, size := range sizes {
			for _, conc := range concs {
				c, ok := st.cell(size, conc)
				if !ok {
					continue
				}
				f := figure{label: fmt.Sprintf("gateway saves/s vs raw upload, %d KiB, c=%d, emulator on %s", size, conc, storage), value: math.NaN(), shown: "n/a"}
				if c.Raw != nil && c.Raw.PerSec > 0 {
					f.value = c.Gateway.PerSec / c.Raw.PerSec
					f.shown = fmt.Sprintf("%.2fx (%.0f vs %.0f/s)", f.value, c.Gateway.PerSec, c.Raw.PerSec)
				}
				out = append(out, f)
			}
		}
	}
	return out
}

// p99 is the p99 figure of the read query key, in milliseconds, in a row
// named label. A query without a successful request has no p99 and meets
// no goal.
func p99(r *Report, key, label string) []figure {
	if r.Reads == nil {
		return nil
	}
	q, ok := r.Reads.Query(key)
	if !ok {
		return nil
	}
	v := math.Inf(1)
	if q.Ops > 0 {
		v = float64(q.P99) / float64(time.Millisecond)
	}
	return []figure{{label, v, ms(q.P99)}}
}

// p99Ratio is the p99 of read query key over that of base, in a row
// named label; either missing leaves no figure.
func p99Ratio(r *Report, key, base, label string) []figure {
	if r.Reads == nil {
		return nil
	}
	q, ok1 := r.Reads.Query(key)
	b, ok2 := r.Reads.Query(base)
	if !ok1 || !ok2 || q.Ops == 0 || b.Ops == 0 || b.P99 <= 0 {
		return nil
	}
	v := float64(q.P99) / float64(b.P99)
	return []figure{{label, v, fmt.Sprintf("%.2fx (%s vs %s)", v, ms(q.P99), ms(b.P99))}}
}

// targetRows evaluates targets against r.
func targetRows(r *Report) []TargetRow {
	var out []TargetRow
	for _, t := range targets {
		figs := t.figures(r)
		if len(figs) == 0 {
			out = append(out, TargetRow{t.name, "n/a", t.goal.String(), "n/a"})
			continue
		}
		for _, f := range figs {
			row := TargetRow{Target: t.name, Measured: f.shown, Goal: t.goal.String(), Met: "NO"}
			if f.label != "" {
				row.Target = f.label
			}
			switch {
			case math.IsNaN(f.value):
				row.Met = "n/a"
			case t.goal.Met(f.value):
				row.Met = "yes"
			}
			out = append(out, row)
		}
	}
	return out
}
