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

// measured is a report with every target's figures: rates, CPU ratios
// and latencies chosen by the arguments.
func measured(diskRatio, cpu16, cpu256 float64, p50Gap time.Duration, p99Big, p99Batch time.Duration, gcRatio, notify, emuRatio float64, rssMiB float64) *Report {
	cell := func(size, conc int, gw, raw float64, gwCPU float64, rss float64) Cell {
		return Cell{SizeKiB: size, Conc: conc, Gateway: Result{Ops: 1, PerSec: gw, P50: 2*time.Millisecond + p50Gap},
			Raw: &Result{Ops: 1, PerSec: raw}, Naive: &Result{Ops: 1, P50: 2 * time.Millisecond},
			GwCPU1k: gwCPU, RawCPU1k: 0.5, GwPeakMiB: rss}
	}
	return &Report{
		Stages: []Stage{
			{Storage: "disk", Cells: []Cell{cell(16, 64, 500*diskRatio, 500, 0.5*cpu16, 0), cell(256, 64, 200*diskRatio, 200, 0.5*cpu256, rssMiB)}},
			{Storage: "tmpfs", Cells: []Cell{cell(16, 1, 100, 2000, 0.5*cpu16, 0)}},
		},
		Reads: &Reads{Rows: 1_000_000, Queries: []Query{
			{Key: "latest10_toplevel_10000_traces", Result: Result{Ops: 10, P99: p99Big}},
			{Key: "latest10_toplevel_25_traces", Result: Result{Ops: 0}},
			{Key: "batch_200_toplevels", Result: Result{Ops: 10, P99: p99Batch}},
			{Key: "latest10_toplevel_10000_traces_index_only", Result: Result{Ops: 10, P99: 770 * time.Microsecond}},
			{Key: "batch_200_toplevels_index_only", Result: Result{Ops: 10, P99: 4620 * time.Microsecond}},
		}},
		GC: &GCResults{SavesWithout: Result{Ops: 10, P99: 80 * time.Millisecond}, SavesDuring: Result{Ops: 10, P99: time.Duration(gcRatio * float64(80*time.Millisecond))},
			P99Ratio: gcRatio},
		Notify: &NotifyResults{
			Queue:    NotifyRun{Messages: 50_000, Applied: 50_000, PerSec: notify, Secs: 2},
			Emulator: EmulatorRun{NotifyRun: NotifyRun{Messages: 1000, Applied: 1000, PerSec: 1000 * emuRatio}, BarePerSec: 1000},
		},
	}
}

func TestTargetRows(t *testing.T) {
	na := func(name, goal string) TargetRow { return TargetRow{name, "n/a", goal, "n/a"} }
	nothing := []TargetRow{
		na("gateway CPU per 16 KiB save / storage client CPU per upload", "<= 1.15x"),
		na("gateway CPU per 256 KiB save / storage client CPU per upload", "<= 1.60x"),
		na("gateway saves/s vs raw upload, 16 KiB, c=64, emulator on disk", ">= 0.95x"),
		na("gateway saves/s vs raw upload, every size at c>=16, emulator on disk", ">= 0.90x"),
		na("gateway p50 - naive p50, 16 KiB, c=1, emulator on tmpfs", "<= 0.5 ms"),
		na("HTTP latest-10 p99 / the same query in process", "<= 1.30x"),
		na("HTTP batch of 200 toplevels p99 / the same query in process", "<= 1.30x"),
		na("HTTP latest-10 p99 at 1M rows", "<= 1 ms"),
		na("HTTP latest-10 p99, toplevel with 25 traces", "<= 1 ms"),
		na("HTTP batch of 200 toplevels p99", "<= 6 ms"),
		na("saves p99 during GC / without", "<= 1.20x"),
		na("notify deletions/s through the consumer (in-process queue)", ">= 20,000"),
		na("notify on the official Pub/Sub emulator / bare Receive+Ack", ">= 0.95x"),
		na("gateway peak RSS, c=64, 256 KiB", "< 300 MiB"),
	}
	for _, tc := range []struct {
		name string
		r    *Report
		want []TargetRow
	}{
		{"nothing measured", &Report{}, nothing},
		{"at the limits", measured(0.95, 1.15, 1.6, 500*time.Microsecond, time.Millisecond, 6*time.Millisecond, 1.2, 20_000, 0.95, 299), []TargetRow{
			{"gateway CPU per 16 KiB save / storage client CPU per 16 KiB upload, c=64, disk", "1.15x (0.575 vs 0.500 ms)", "<= 1.15x", "yes"},
			{"gateway CPU per 16 KiB save / storage client CPU per 16 KiB upload, c=1, tmpfs", "1.15x (0.575 vs 0.500 ms)", "<= 1.15x", "yes"},
			{"gateway CPU per 256 KiB save / storage client CPU per 256 KiB upload, c=64, disk", "1.60x (0.800 vs 0.500 ms)", "<= 1.60x", "yes"},
			{"gateway saves/s vs raw upload, 16 KiB, c=64, emulator on disk", "0.95x (475 vs 500/s)", ">= 0.95x", "yes"},
			{"gateway saves/s vs raw upload, 16 KiB, c=64, emulator on disk", "0.95x (475 vs 500/s)", ">= 0.90x", "yes"},
			{"gateway saves/s vs raw upload, 256 KiB, c=64, emulator on disk", "0.95x (190 vs 200/s)", ">= 0.90x", "yes"},
			{"gateway p50 - naive p50, 16 KiB, c=1, emulator on tmpfs", "+0.50 ms (2.50ms vs 2.00ms)", "<= 0.5 ms", "yes"},
			{"HTTP latest-10 p99 / index.DB.RecentKept p99 in process, toplevel with 10,000 traces", "1.30x (1.00ms vs 0.77ms)", "<= 1.30x", "yes"},
			{"HTTP batch of 200 toplevels p99 / index.DB.RecentManyKept p99 in process", "1.30x (6.00ms vs 4.62ms)", "<= 1.30x", "yes"},
			{"HTTP latest-10 p99, toplevel with 10,000 traces, 1000000 rows", "1.00ms", "<= 1 ms", "yes"},
			{"HTTP latest-10 p99, toplevel with 25 traces", "-", "<= 1 ms", "NO"}, // no successful request
			{"HTTP batch of 200 toplevels p99", "6.00ms", "<= 6 ms", "yes"},
			{"saves p99 during GC / without (16 KiB, c=16, disk)", "1.20x (96.00ms vs 80.00ms)", "<= 1.20x", "yes"},
			{"notify deletions/s, notify.Queue -> decide -> batch -> commit -> ack", "20000", ">= 20,000", "yes"},
			{"notify on the official Pub/Sub emulator / a bare Receive+Ack there", "0.95x (950 vs 1000/s)", ">= 0.95x", "yes"},
			{"gateway peak RSS, c=64, 256 KiB", "299 MiB", "< 300 MiB", "yes"},
		}},
		{"past the limits", measured(0.5, 2.6, 4, 2200*time.Microsecond, 1100*time.Microsecond, 9830*time.Microsecond, 1.25, 24, 0.5, 300), []TargetRow{
			{"gateway CPU per 16 KiB save / storage client CPU per 16 KiB upload, c=64, disk", "2.60x (1.300 vs 0.500 ms)", "<= 1.15x", "NO"},
			{"gateway CPU per 16 KiB save / storage client CPU per 16 KiB upload, c=1, tmpfs", "2.60x (1.300 vs 0.500 ms)", "<= 1.15x", "NO"},
			{"gateway CPU per 256 KiB save / storage client CPU per 256 KiB upload, c=64, disk", "4.00x (2.000 vs 0.500 ms)", "<= 1.60x", "NO"},
			{"gateway saves/s vs raw upload, 16 KiB, c=64, emulator on disk", "0.50x (250 vs 500/s)", ">= 0.95x", "NO"},
			{"gateway saves/s vs raw upload, 16 KiB, c=64, emulator on disk", "0.50x (250 vs 500/s)", ">= 0.90x", "NO"},
			{"gateway saves/s vs raw upload, 256 KiB, c=64, emulator on disk", "0.50x (100 vs 200/s)", ">= 0.90x", "NO"},
			{"gateway p50 - naive p50, 16 KiB, c=1, emulator on tmpfs", "+2.20 ms (4.20ms vs 2.00ms)", "<= 0.5 ms", "NO"},
			{"HTTP latest-10 p99 / index.DB.RecentKept p99 in process, toplevel with 10,000 traces", "1.43x (1.10ms vs 0.77ms)", "<= 1.30x", "NO"},
			{"HTTP batch of 200 toplevels p99 / index.DB.RecentManyKept p99 in process", "2.13x (9.83ms vs 4.62ms)", "<= 1.30x", "NO"},
			{"HTTP latest-10 p99, toplevel with 10,000 traces, 1000000 rows", "1.10ms", "<= 1 ms", "NO"},
			{"HTTP latest-10 p99, toplevel with 25 traces", "-", "<= 1 ms", "NO"},
			{"HTTP batch of 200 toplevels p99", "9.83ms", "<= 6 ms", "NO"},
			{"saves p99 during GC / without (16 KiB, c=16, disk)", "1.25x (100.00ms vs 80.00ms)", "<= 1.20x", "NO"},
			{"notify deletions/s, notify.Queue -> decide -> batch -> commit -> ack", "24", ">= 20,000", "NO"},
			{"notify on the official Pub/Sub emulator / a bare Receive+Ack there", "0.50x (500 vs 1000/s)", ">= 0.95x", "NO"},
			{"gateway peak RSS, c=64, 256 KiB", "300 MiB", "< 300 MiB", "NO"},
		}},
		{"remote: no raw baseline", &Report{Stages: []Stage{{Storage: "remote", Cells: []Cell{{SizeKiB: 16, Conc: 64, Gateway: Result{PerSec: 900}}}}}}, nothing},
	} {
		if diff := cmp.Diff(tc.want, targetRows(tc.r)); diff != "" {
			t.Errorf("%s: targetRows (-want +got):\n%s", tc.name, diff)
		}
	}
}
