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
// prints them. Adding a target, or a goal to another figure, is adding an
// entry here.
var targets = []target{
	{"gateway saves/s vs raw upload, 16 KiB, c=64", Goal{">=", 0.90, "x"}, func(r *Report) []figure {
		var out []figure
		for _, st := range r.Stages {
			if c, ok := st.cell(16, 64); ok {
				f := figure{label: "gateway saves/s vs raw upload, 16 KiB, c=64, emulator on " + st.Storage, value: math.NaN(), shown: "n/a"}
				if c.Raw != nil && c.Raw.PerSec > 0 {
					f.value = c.Gateway.PerSec / c.Raw.PerSec
					f.shown = fmt.Sprintf("%.2fx (%.0f vs %.0f/s)", f.value, c.Gateway.PerSec, c.Raw.PerSec)
				}
				out = append(out, f)
			}
		}
		return out
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
	{"notify deletions/s", Goal{">=", 20_000, ""}, func(r *Report) []figure {
		n := r.Notify
		if n == nil || n.Applied == 0 {
			return nil
		}
		shown := fmt.Sprintf("%.0f", n.PerSec)
		if n.Applied < int64(n.Messages) {
			shown += fmt.Sprintf(" (%d/%d in %.0fs)", n.Applied, n.Messages, n.ConsumeSecs)
		}
		return []figure{{"notify deletions/s (pstest -> consumer -> index)", n.PerSec, shown}}
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
