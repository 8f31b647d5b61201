package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/ttl"
	"github.com/tracegw/tracegw/testutil"
)

// runCmd runs one tracegw command line in process and returns its exit
// status and output.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(t.Context(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func contains(t *testing.T, what, got string, wants ...string) {
	t.Helper()
	for _, w := range wants {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// TestServeRefusesDisagreeingRetention: serve --run-gc and gc refuse to
// start when --retention disagrees with the bucket's lifecycle rule, and
// say what to run.
func TestServeRefusesDisagreeingRetention(t *testing.T) {
	t.Parallel()
	emu := testutil.Emulator(t)
	db := testutil.PG(t)
	if _, err := ttl.SetupBucket(t.Context(), objstore.New(emu.Client, emu.Bucket), ttl.DefaultPolicy(), ttl.BucketOptions{}, false); err != nil {
		t.Fatal(err)
	}
	backends := []string{"--database-url", db, "--gcs-endpoint", emu.URL, "--bucket", emu.Bucket, "--retention", "14d"}
	code, _, stderr := runCmd(t, append([]string{"serve", "--insecure-no-auth", "--run-gc", "--listen", "127.0.0.1:0"}, backends...)...)
	if code != 1 {
		t.Errorf("serve --run-gc exited %d, want 1", code)
	}
	contains(t, "serve's error", stderr, "--run-gc", "--retention 14d disagrees with the bucket's lifecycle rule (7d)",
		"tracegw retention set --retention 14d")
	code, _, stderr = runCmd(t, append([]string{"gc", "--once"}, backends...)...)
	if code != 1 || !strings.Contains(stderr, "tracegw retention set --retention 14d") {
		t.Errorf("gc --once exited %d: %s", code, stderr)
	}
	code, _, stderr = runCmd(t, "setup-bucket", "--gcs-endpoint", emu.URL, "--bucket", emu.Bucket, "--retention", "14d")
	if code != 1 || !strings.Contains(stderr, "setup-bucket never changes the retention") {
		t.Errorf("setup-bucket --retention 14d on a 7d bucket exited %d: %s", code, stderr)
	}
}

// TestStatusAgainstDev runs `tracegw status` and `tracegw retention` in
// process against a running dev system: healthy after GC ran (exit 0), then
// with GC stopped for 36 hours (less than half the 2-day margin left before
// the keeper deadline) it warns and exits 1. A retention raise shows as in
// progress, and once it has settled the dev GC, still run with --retention
// 7d, is refused and status says so.
func TestStatusAgainstDev(t *testing.T) {
	dt := startDevTest(t, testutil.PG(t))
	const canvas = "7d3f5a1c-0000-4000-8000-0000000000dd"
	for range 12 {
		dt.save(canvas, "1")
	}
	if sum := dt.advance("8d"); sum.Deleted != 2 {
		t.Fatalf("advance 8d: %+v, want 2 deleted", sum)
	}
	target := []string{"--database-url", dt.d.dbURL, "--gcs-endpoint", dt.d.gcsEndpoint, "--bucket", dt.d.bucket}
	// The emulator's clock jumps an hour per step while deletions are
	// consumed in real time, so on its clock notifications lag hours.
	status := func() (int, string, string) {
		return runCmd(t, append([]string{"status", "--max-notify-lag", "30d"}, target...)...)
	}

	code, out, stderr := status()
	if code != 0 {
		t.Errorf("status of a healthy system exited %d: %s\n%s", code, stderr, out)
	}
	contains(t, "status", out, "(the emulator's clock)", "last pass ", ": ok, retention 7d, keep 10", "keeper deadline   ",
		"bucket rule       Delete at daysSinceCustomTime >= 7 (7d)", "recorded          retention 7d, keep 10 per toplevel",
		"bucket "+dt.d.bucket+": newest deletion applied happened", "trace_tlids", "gc_passes")
	if strings.Contains(out, "WARN") {
		t.Errorf("healthy status warns:\n%s", out)
	}

	// GC stops (the clock moves without it) for a day and a half.
	dt.d.emu.SetHooks(emulator.Hooks{Drain: dt.d.drain})
	dt.advance("36h")
	code, out, stderr = status()
	if code != 1 || !strings.Contains(stderr, "warnings") {
		t.Errorf("status with GC stopped exited %d (%s), want 1", code, stderr)
	}
	contains(t, "status with GC stopped", out, "WARN no GC pass for 36h", "WARN the keeper deadline is in 12h")

	dt.d.emu.SetHooks(emulator.Hooks{OnStep: dt.d.gc.Step, Drain: dt.d.drain})
	code, out, stderr = runCmd(t, append([]string{"retention", "set", "--retention", "14d"}, target...)...)
	if code != 0 {
		t.Fatalf("retention set exited %d: %s\n%s", code, stderr, out)
	}
	contains(t, "retention set", out, "retention 7d → 14d: change the rule; GC goes on renewing against 7d",
		"renewal pass 1 under retention 7d, keep 10", "lifecycle rule {Delete if daysSinceCustomTime=7} → {Delete if daysSinceCustomTime=14}",
		"in progress: complete at ")
	dt.advance("1h")
	code, out, _ = status()
	if code != 0 {
		t.Errorf("status during the raise exited %d:\n%s", code, out)
	}
	contains(t, "status during the raise", out, "retention change  7d → 14d in progress: GCS may apply the old rule until")

	// The change settles; dev's GC still runs with --retention 7d, which is
	// refused from then on.
	dt.d.emu.SetHooks(emulator.Hooks{Drain: dt.d.drain})
	dt.advance("48h")
	code, _, stderr = runCmd(t, append([]string{"gc", "--once", "--retention", "7d"}, target...)...)
	if code != 1 || !strings.Contains(stderr, "--retention 7d disagrees") {
		t.Errorf("gc --once --retention 7d after the raise settled exited %d: %s", code, stderr)
	}
	if st, body := dt.do("GET", "/readyz", ""); st != 200 {
		t.Errorf("/readyz while GC refuses: %d %s, want 200 (readiness does not depend on GC)", st, body)
	}
	code, out, stderr = runCmd(t, append([]string{"gc", "--once", "--retention", "14d"}, target...)...)
	if code != 0 || !strings.Contains(out, "gc: ") {
		t.Errorf("gc --once --retention 14d exited %d: %s\n%s", code, stderr, out)
	}
	code, out, _ = runCmd(t, append([]string{"retention", "show"}, target...)...)
	if code != 0 {
		t.Errorf("retention show exited %d", code)
	}
	contains(t, "retention show", out, "recorded          retention 14d, keep 10", "retention change  7d → 14d complete")
	code, out, _ = status()
	if code != 0 {
		t.Errorf("status after gc --retention 14d exited %d:\n%s", code, out)
	}
	contains(t, "status after the raise", out, ": ok, retention 14d, keep 10")
}
