package bench

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// sampleReport is a full run's report with made-up figures, an error in a
// saves cell and in a read query, and a notify run that timed out.
func sampleReport() Report {
	res := func(ops int, perSec float64, p50, p99 time.Duration) Result {
		return Result{Ops: ops, Elapsed: 4 * time.Second, PerSec: perSec, P50: p50, P95: (p50 + p99) / 2, P99: p99}
	}
	ptr := func(r Result) *Result { return &r }
	r := Report{
		Mode: "full", Host: "go1.26.8 linux/amd64, 2 CPUs", Started: time.Date(2026, 11, 22, 6, 28, 6, 0, time.UTC), Seconds: 350.4,
		Method: method,
		Stages: []Stage{
			{Storage: "disk", Dir: "tgwbench-1/gcs-disk", Cells: []Cell{
				{SizeKiB: 2, Conc: 1, Gateway: res(748, 187, 4790*time.Microsecond, 11530*time.Microsecond),
					Raw: ptr(res(956, 239, 3990*time.Microsecond, 6150*time.Microsecond)), Naive: ptr(res(864, 216, 4460*time.Microsecond, 7830*time.Microsecond)),
					GwCPU1k: 1.132, GwPeakMiB: 49, EmuCPU1k: 3.795},
				{SizeKiB: 16, Conc: 64, Gateway: res(1984, 496, 109340*time.Microsecond, 320510*time.Microsecond),
					Raw: ptr(res(2184, 546, 94230*time.Microsecond, 290430*time.Microsecond)), Naive: ptr(res(2084, 521, 100970*time.Microsecond, 305220*time.Microsecond)),
					GwCPU1k: 1.079, RawCPU1k: 0.95, GwPeakMiB: 65, EmuCPU1k: 1.26},
				{SizeKiB: 256, Conc: 64, Gateway: res(956, 239, 231110*time.Microsecond, 653090*time.Microsecond),
					Raw: ptr(res(1508, 377, 140540*time.Microsecond, 441490*time.Microsecond)), Naive: ptr(res(1592, 398, 130320*time.Microsecond, 426910*time.Microsecond)),
					GwCPU1k: 3.349, GwPeakMiB: 159, EmuCPU1k: 2.764},
			}},
			{Storage: "tmpfs", Dir: "/dev/shm/tgwbench-2", Cells: []Cell{
				{SizeKiB: 16, Conc: 64, Gateway: Result{Ops: 4600, Errors: 3, Elapsed: 4 * time.Second, PerSec: 1150, P50: 52180 * time.Microsecond, P99: 125200 * time.Microsecond, FirstErr: "save trace 0e3f: tracegw: 503 unavailable: try again"},
					Raw: ptr(res(8808, 2202, 24420*time.Microsecond, 79590*time.Microsecond)), Naive: nil,
					GwCPU1k: 0.604, GwPeakMiB: 72, EmuCPU1k: 0.644},
			}},
		},
		Reads: &Reads{Rows: 1_000_000, SeedTime: 5.6, Queries: []Query{
			{"latest10_toplevel_10000_traces", "latest 10, toplevel with 10,000 traces", res(15118, 2520, 380*time.Microsecond, 730*time.Microsecond)},
			{"latest10_toplevel_25_traces", "latest 10, toplevel with 25 traces", res(15833, 2639, 360*time.Microsecond, 690*time.Microsecond)},
			{"batch_200_toplevels", "latest 10 of 200 toplevels (batch)", Result{Ops: 1133, Errors: 2, PerSec: 189, P50: 5090 * time.Microsecond, P95: 7940 * time.Microsecond, P99: 9830 * time.Microsecond, FirstErr: "recent traces of 200 toplevels: context deadline exceeded"}},
			{"batch_200_toplevels_index_only", "same batch, index.DB.RecentManyKept in process (no HTTP, no JSON)", res(3423, 570, 1750*time.Microsecond, 3790*time.Microsecond)},
			{"latest10_toplevel_10000_traces_index_only", "latest 10 of a big toplevel, index.DB.RecentKept in process", res(16990, 2830, 330*time.Microsecond, 610*time.Microsecond)},
			{"latest10_toplevel_10000_traces_sql_floor", "latest 10 of a big toplevel, index.DB.Recent (index-only scan, not judged)", res(31020, 5170, 180*time.Microsecond, 350*time.Microsecond)},
		}},
		GC: &GCResults{Renewed: 2000, Seconds: 0.53, RenewalsPerSec: 3794, SavesWithout: res(1716, 429, 35190*time.Microsecond, 80550*time.Microsecond),
			SavesDuring: res(1396, 349, 43620*time.Microsecond, 91450*time.Microsecond), DuringRenewed: 4047, P99Ratio: 91.45 / 80.55},
		Notify: &NotifyResults{
			Queue: NotifyRun{Messages: 100_000, Applied: 100_000, Secs: 2.5, PerSec: 40_000, CPU1k: 0.021},
			Emulator: EmulatorRun{NotifyRun: NotifyRun{Messages: 20_000, Applied: 19_000, Secs: 30, PerSec: 633},
				BareN: 20_000, BarePerSec: 1900, PublishSecs: 1.2,
				Err: "the consumer applied 19000 of 20000 notifications, then nothing for 3s"},
			RowsRemoved: 119_000, ApplyN: 100_000, ApplyPerSec: 101550},
	}
	r.Targets = targetRows(&r)
	return r
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

func TestWriteText(t *testing.T) {
	r := sampleReport()
	var b bytes.Buffer
	if err := r.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.txt", b.Bytes())

	// A run stopped before anything was measured still renders.
	b.Reset()
	empty := Report{Mode: "quick", Host: "h", Started: r.Started, Method: remoteMethod}
	empty.Targets = targetRows(&empty)
	if err := empty.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report-empty.txt", b.Bytes())
}

func TestWriteJSON(t *testing.T) {
	r := sampleReport()
	var b bytes.Buffer
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	golden(t, "report.json", b.Bytes())

	// It reads back as the same report, read queries and labels included.
	var back Report
	if err := json.Unmarshal(b.Bytes(), &back); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, back); diff != "" {
		t.Errorf("JSON round trip (-wrote +read):\n%s", diff)
	}
}

// failingWriter fails every write after the first n bytes.
type failingWriter struct{ n int }

func (f *failingWriter) Write(p []byte) (int, error) {
	if f.n < len(p) {
		return 0, os.ErrClosed
	}
	f.n -= len(p)
	return len(p), nil
}

func TestWriteTextReportsWriteErrors(t *testing.T) {
	r := sampleReport()
	if err := r.WriteText(&failingWriter{n: 100}); err != os.ErrClosed {
		t.Errorf("WriteText to a failing writer = %v, want its error", err)
	}
}
