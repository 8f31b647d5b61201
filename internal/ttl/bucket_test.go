package ttl

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

const topic = "projects/p1/topics/trace-deletes"

func TestSetupBucketIdempotent(t *testing.T) {
	t.Parallel()
	emu := testutil.Emulator(t)
	b := objstore.New(emu.Client, emu.Bucket)
	ctx := t.Context()
	p := DefaultPolicy()
	o := BucketOptions{Topic: topic}

	dry, err := SetupBucket(ctx, b, p, o, true)
	if err != nil {
		t.Fatalf("dry run: %v", err)
	}
	wantDry := []string{
		"would add lifecycle rule {Delete if daysSinceCustomTime=7}",
		"would add notification config: OBJECT_DELETE events to " + topic + ", payload JSON_API_V1",
	}
	if diff := cmp.Diff(wantDry, dry.Changes); diff != "" {
		t.Errorf("dry-run changes (-want +got):\n%s", diff)
	}
	if drift, err := CheckBucket(ctx, b, p, topic); err != nil || len(drift) != 2 {
		t.Errorf("CheckBucket after dry run = %q, %v; want 2 lines (a dry run changes nothing)", drift, err)
	}

	rep, err := SetupBucket(ctx, b, p, o, false)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	if diff := cmp.Diff(wantDry, prefixed("would ", rep.Changes)); diff != "" {
		t.Errorf("changes (-want +got):\n%s", diff)
	}
	again, err := SetupBucket(ctx, b, p, o, false)
	if err != nil || len(again.Changes) != 0 || len(again.Warnings) != 0 {
		t.Errorf("second setup = %+v, %v; want no changes", again, err)
	}
	if drift, err := CheckBucket(ctx, b, p, topic); err != nil || len(drift) != 0 {
		t.Errorf("CheckBucket = %q, %v; want no drift", drift, err)
	}
	notes, err := b.Notifications(ctx)
	if err != nil || len(notes) != 1 {
		t.Fatalf("notifications = %+v, %v; want exactly one", notes, err)
	}
	n := notes[0]
	if n.Topic != topic || !cmp.Equal(n.EventTypes, []string{"OBJECT_DELETE"}) || n.PayloadFormat != "JSON_API_V1" {
		t.Errorf("notification = %+v", n)
	}
}

func TestSetupBucketFixesDrift(t *testing.T) {
	t.Parallel()
	emu := testutil.Emulator(t)
	b := objstore.New(emu.Client, emu.Bucket)
	ctx := t.Context()
	s, err := b.BucketSettings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	week := 7 * Day
	// A redundant longer tracegw rule (14 days, beside the 7 days that
	// decide), a foreign rule, soft delete on.
	if _, err := b.UpdateBucket(ctx, traces.BucketUpdate{
		SoftDelete: &week,
		AddRules: []traces.LifecycleRule{
			{Action: "Delete", DaysSinceCustomTime: 14},
			{Action: "SetStorageClass", StorageClass: "NEARLINE", DaysSinceCustomTime: 30},
			{Action: "Delete", DaysSinceCustomTime: 7},
		},
	}, s.Metageneration); err != nil {
		t.Fatalf("set up drift: %v", err)
	}
	drift, err := CheckBucket(ctx, b, DefaultPolicy(), "")
	if err != nil {
		t.Fatal(err)
	}
	wantDrift := []string{
		"bucket " + emu.Bucket + " needs: remove lifecycle rule {Delete if daysSinceCustomTime=14} (run tracegw setup-bucket)",
		"bucket " + emu.Bucket + " needs: turn soft delete off (was 7d: every expired trace would be billed that long) (run tracegw setup-bucket)",
		"lifecycle rule {SetStorageClass(NEARLINE) if daysSinceCustomTime=30} is not tracegw's and was left alone",
	}
	if diff := cmp.Diff(wantDrift, drift); diff != "" {
		t.Errorf("CheckBucket (-want +got):\n%s", diff)
	}
	rep, err := SetupBucket(ctx, b, DefaultPolicy(), BucketOptions{}, false)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	if len(rep.Changes) != 2 || len(rep.Warnings) != 2 { // foreign rule, no topic
		t.Errorf("setup report = %+v; want 2 changes, 2 warnings", rep)
	}
	got, err := b.BucketSettings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []traces.LifecycleRule{
		{Action: "SetStorageClass", StorageClass: "NEARLINE", DaysSinceCustomTime: 30},
		{Action: "Delete", DaysSinceCustomTime: 7},
	}
	if diff := cmp.Diff(want, got.Lifecycle); diff != "" || got.SoftDelete != 0 || got.Versioning {
		t.Errorf("bucket after setup: soft delete %s, versioning %v, rules (-want +got):\n%s", got.SoftDelete, got.Versioning, diff)
	}
}

// TestSetupBucketNeverChangesRetention: a bucket whose rule has another
// retention than --retention is refused by setup-bucket (the change must go
// through tracegw retention set) and reported by CheckBucket; the bucket is
// left alone.
func TestSetupBucketNeverChangesRetention(t *testing.T) {
	t.Parallel()
	emu := testutil.Emulator(t)
	b := objstore.New(emu.Client, emu.Bucket)
	ctx := t.Context()
	p := DefaultPolicy()
	p.Retention = 3 * Day
	if _, err := SetupBucket(ctx, b, p, BucketOptions{}, false); err != nil {
		t.Fatal(err)
	}
	for _, dry := range []bool{true, false} {
		_, err := SetupBucket(ctx, b, DefaultPolicy(), BucketOptions{}, dry)
		if !errors.Is(err, ErrDisagree) || !strings.Contains(err.Error(), "tracegw retention set --retention 7d") {
			t.Errorf("setup (dry run %v) of a 3d bucket with --retention 7d = %v; want ErrDisagree naming tracegw retention set", dry, err)
		}
	}
	drift, err := CheckBucket(ctx, b, DefaultPolicy(), "")
	if err != nil || len(drift) != 1 || !strings.Contains(drift[0], "its lifecycle rule deletes after 3d but --retention is 7d: GC refuses this unless") {
		t.Errorf("CheckBucket = %q, %v; want one line about the 3d rule", drift, err)
	}
	s, err := b.BucketSettings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := ReadRule(s); got != (Rule{Days: 3, Found: true}) {
		t.Errorf("rule after the refused setup = %+v, want 3 days", got)
	}
}

func TestSetupBucketCreates(t *testing.T) {
	t.Parallel()
	emu := testutil.Emulator(t)
	b := objstore.New(emu.Client, emu.Bucket+"-new")
	ctx := t.Context()
	if _, err := SetupBucket(ctx, b, DefaultPolicy(), BucketOptions{Topic: topic}, false); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("setup of a missing bucket without a project = %v, want ErrNotFound", err)
	}
	rep, err := SetupBucket(ctx, b, DefaultPolicy(), BucketOptions{Project: "p1", Topic: topic}, false)
	if err != nil {
		t.Fatalf("setup: %v", err)
	}
	if len(rep.Changes) != 2 || !strings.HasPrefix(rep.Changes[0], "create bucket") {
		t.Errorf("changes = %q; want create, then add notification", rep.Changes)
	}
	if drift, err := CheckBucket(ctx, b, DefaultPolicy(), topic); err != nil || len(drift) != 0 {
		t.Errorf("CheckBucket after create = %q, %v; want no drift", drift, err)
	}
	if _, err := CheckBucket(ctx, objstore.New(emu.Client, emu.Bucket+"-none"), DefaultPolicy(), ""); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("CheckBucket of a missing bucket = %v, want ErrNotFound", err)
	}
}

func prefixed(p string, ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = p + s
	}
	return out
}
