package bench

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestGoal(t *testing.T) {
	for _, tc := range []struct {
		g        Goal
		text     string
		met, not float64
	}{
		{Goal{">=", 0.90, "x"}, ">= 0.90x", 0.90, 0.899},
		{Goal{"<=", 1.2, "x"}, "<= 1.20x", 1.2, 1.21},
		{Goal{"<=", 1, "ms"}, "<= 1 ms", 1, 1.01},
		{Goal{"<=", 6, "ms"}, "<= 6 ms", 5.99, math.Inf(1)},
		{Goal{">=", 20_000, ""}, ">= 20,000", 20_000, 19_999},
		{Goal{"<", 300, "MiB"}, "< 300 MiB", 299.9, 300},
		{Goal{">", 1_234_567, ""}, "> 1,234,567", 1_234_568, 1_234_567},
	} {
		if got := tc.g.String(); got != tc.text {
			t.Errorf("%+v: String = %q, want %q", tc.g, got, tc.text)
		}
		if !tc.g.Met(tc.met) || tc.g.Met(tc.not) || tc.g.Met(math.NaN()) {
			t.Errorf("%s: Met(%v) = %v, Met(%v) = %v, Met(NaN) = %v; want true, false, false",
				tc.text, tc.met, tc.g.Met(tc.met), tc.not, tc.g.Met(tc.not), tc.g.Met(math.NaN()))
		}
	}
}

// measured is a report with every target's figures: rates and latencies
// chosen by the arguments.
func measured(diskRatio, tmpfsGw float64, p99Big, p99Batch time.Duration, gcRatio, notify float64, rssMiB float64) *Report {
	cell := func(gw, raw float64, rss float64, size int) Cell {
		return Cell{SizeKiB: size, Conc: 64, Gateway: Result{Ops: 1, PerSec: gw}, Raw: &Result{Ops: 1, PerSec: raw}, GwPeakMiB: rss}
	}
	return &Report{
		Stages: []Stage{
			{Storage: "disk", Cells: []Cell{cell(500*diskRatio, 500, 0, 16), cell(100, 200, rssMiB-10, 256)}},
			{Storage: "tmpfs", Cells: []Cell{cell(tmpfsGw, 2000, 0, 16), cell(100, 200, rssMiB, 256)}},
		},
		Reads: &Reads{Rows: 1_000_000, Queries: []Query{
			{Key: "latest10_toplevel_10000_traces", Result: Result{Ops: 10, P99: p99Big}},
			{Key: "latest10_toplevel_25_traces", Result: Result{Ops: 0}},
			{Key: "batch_200_toplevels", Result: Result{Ops: 10, P99: p99Batch}},
		}},
		GC: &GCResults{SavesWithout: Result{Ops: 10, P99: 80 * time.Millisecond}, SavesDuring: Result{Ops: 10, P99: time.Duration(gcRatio * float64(80*time.Millisecond))},
			P99Ratio: gcRatio},
		Notify: &NotifyResults{Messages: 50_000, Applied: 731, PerSec: notify, ConsumeSecs: 30},
	}
}

func TestTargetRows(t *testing.T) {
	na := func(name, goal string) TargetRow { return TargetRow{name, "n/a", goal, "n/a"} }
	for _, tc := range []struct {
		name string
		r    *Report
		want []TargetRow
	}{
		{"nothing measured", &Report{}, []TargetRow{
			na("gateway saves/s vs raw upload, 16 KiB, c=64", ">= 0.90x"),
			na("HTTP latest-10 p99 at 1M rows", "<= 1 ms"),
			na("HTTP latest-10 p99, toplevel with 25 traces", "<= 1 ms"),
			na("HTTP batch of 200 toplevels p99", "<= 6 ms"),
			na("saves p99 during GC / without", "<= 1.20x"),
			na("notify deletions/s", ">= 20,000"),
			na("gateway peak RSS, c=64, 256 KiB", "< 300 MiB"),
		}},
		{"at the limits", measured(0.90, 1800, time.Millisecond, 6*time.Millisecond, 1.2, 20_000, 299), []TargetRow{
			{"gateway saves/s vs raw upload, 16 KiB, c=64, emulator on disk", "0.90x (450 vs 500/s)", ">= 0.90x", "yes"},
			{"gateway saves/s vs raw upload, 16 KiB, c=64, emulator on tmpfs", "0.90x (1800 vs 2000/s)", ">= 0.90x", "yes"},
			{"HTTP latest-10 p99, toplevel with 10,000 traces, 1000000 rows", "1.00ms", "<= 1 ms", "yes"},
			{"HTTP latest-10 p99, toplevel with 25 traces", "-", "<= 1 ms", "NO"}, // no successful request
			{"HTTP batch of 200 toplevels p99", "6.00ms", "<= 6 ms", "yes"},
			{"saves p99 during GC / without (16 KiB, c=16, disk)", "1.20x (96.00ms vs 80.00ms)", "<= 1.20x", "yes"},
			{"notify deletions/s (pstest -> consumer -> index)", "20000 (731/50000 in 30s)", ">= 20,000", "yes"},
			{"gateway peak RSS, c=64, 256 KiB", "299 MiB", "< 300 MiB", "yes"},
		}},
		{"past the limits", measured(0.5, 1000, 1100*time.Microsecond, 9830*time.Microsecond, 1.25, 24, 300), []TargetRow{
			{"gateway saves/s vs raw upload, 16 KiB, c=64, emulator on disk", "0.50x (250 vs 500/s)", ">= 0.90x", "NO"},
			{"gateway saves/s vs raw upload, 16 KiB, c=64, emulator on tmpfs", "0.50x (1000 vs 2000/s)", ">= 0.90x", "NO"},
			{"HTTP latest-10 p99, toplevel with 10,000 traces, 1000000 rows", "1.10ms", "<= 1 ms", "NO"},
			{"HTTP latest-10 p99, toplevel with 25 traces", "-", "<= 1 ms", "NO"},
			{"HTTP batch of 200 toplevels p99", "9.83ms", "<= 6 ms", "NO"},
			{"saves p99 during GC / without (16 KiB, c=16, disk)", "1.25x (100.00ms vs 80.00ms)", "<= 1.20x", "NO"},
			{"notify deletions/s (pstest -> consumer -> index)", "24 (731/50000 in 30s)", ">= 20,000", "NO"},
			{"gateway peak RSS, c=64, 256 KiB", "300 MiB", "< 300 MiB", "NO"},
		}},
		{"remote: no raw baseline", &Report{Stages: []Stage{{Storage: "remote", Cells: []Cell{{SizeKiB: 16, Conc: 64, Gateway: Result{PerSec: 900}}}}}}, []TargetRow{
			na("gateway saves/s vs raw upload, 16 KiB, c=64, emulator on remote", ">= 0.90x"),
			na("HTTP latest-10 p99 at 1M rows", "<= 1 ms"),
			na("HTTP latest-10 p99, toplevel with 25 traces", "<= 1 ms"),
			na("HTTP batch of 200 toplevels p99", "<= 6 ms"),
			na("saves p99 during GC / without", "<= 1.20x"),
			na("notify deletions/s", ">= 20,000"),
			na("gateway peak RSS, c=64, 256 KiB", "< 300 MiB"),
		}},
	} {
		if diff := cmp.Diff(tc.want, targetRows(tc.r)); diff != "" {
			t.Errorf("%s: targetRows (-want +got):\n%s", tc.name, diff)
		}
	}
}
