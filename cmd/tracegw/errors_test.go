package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// Each error a newcomer met says what to do next.

// setup-bucket with neither an endpoint nor credentials used to say only
// "could not find default credentials".
func TestSetupBucketWithoutCredentialsSaysWhatToDo(t *testing.T) {
	t.Setenv("STORAGE_EMULATOR_HOST", "")
	t.Setenv("TRACEGW_GCS_ENDPOINT", "")
	// Points Application Default Credentials at a file that does not
	// exist: a failure on every machine, never a look for a metadata server.
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "none.json"))
	code, _, stderr := runCmd(t, "setup-bucket")
	if code != 1 {
		t.Fatalf("setup-bucket without credentials exited %d: %s", code, stderr)
	}
	contains(t, "setup-bucket's error", stderr, "tracegw setup-bucket: storage client:",
		"gcloud auth application-default login", "GOOGLE_APPLICATION_CREDENTIALS",
		"--gcs-endpoint", "TRACEGW_GCS_ENDPOINT", "STORAGE_EMULATOR_HOST")
}

// notify on a subscription that does not exist used to fail with a raw gRPC
// NotFound from its first Receive.
func TestNotifyWithoutSubscriptionSaysWhatToDo(t *testing.T) {
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	t.Setenv("PUBSUB_EMULATOR_HOST", srv.Addr)
	emu := testutil.Emulator(t)
	code, _, stderr := runCmd(t, "notify", "--database-url", testutil.PG(t), "--gcs-endpoint", emu.URL, "--bucket", emu.Bucket,
		"--pubsub-project", "p", "--subscription", "nowhere")
	if code != 1 {
		t.Fatalf("notify without a subscription exited %d: %s", code, stderr)
	}
	contains(t, "notify's error", stderr, "tracegw notify: ", "subscription projects/p/subscriptions/nowhere does not exist",
		"run `tracegw setup-bucket`", "--subscription")
}

// A subscription deleted while the consumer runs ends it with the same
// advice: the notify adapter wraps Pub/Sub's NotFound in traces.ErrNotFound
// (tested in internal/notify), and only that gets the hint.
func TestConsumerLosingItsSubscriptionSaysWhatToDo(t *testing.T) {
	t.Parallel()
	c := defaults()
	c.PubSubProject, c.Subscription = "p", "gone"
	err := explainConsumer(fmt.Errorf("receive projects/p/subscriptions/gone: %w", traces.ErrNotFound), c)
	if !errors.Is(err, traces.ErrNotFound) || !strings.Contains(err.Error(), "run `tracegw setup-bucket`") {
		t.Errorf("explainConsumer = %v, want the setup-bucket hint, still wrapping ErrNotFound", err)
	}
	if err := explainConsumer(context.Canceled, c); err != context.Canceled {
		t.Errorf("explainConsumer changed an unrelated error: %v", err)
	}
	if err := explainConsumer(nil, c); err != nil {
		t.Errorf("explainConsumer(nil) = %v", err)
	}
}

// token without a key now points at dev's key file.
func TestTokenWithoutKeySaysWhereDevKeepsIt(t *testing.T) {
	t.Setenv("TRACEGW_SIGNING_KEY_FILE", "")
	code, _, stderr := runCmd(t, "token")
	if code != 1 {
		t.Fatalf("token without a key exited %d: %s", code, stderr)
	}
	contains(t, "token's error", stderr, "--signing-key-file (TRACEGW_SIGNING_KEY_FILE) is required", "<data-dir>/signing.key", ".tracegw-dev/signing.key")
}

// A bad --database-url used to read "open index: open index: parse url".
func TestBadDatabaseURLNamesTheFlagOnce(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"gc", "--database-url", "postgres://%zz"},
		{"status", "--database-url", "postgres://%zz"},
		{"migrate", "--database-url", "postgres://%zz"},
	} {
		code, _, stderr := runCmd(t, args...)
		if code != 1 {
			t.Errorf("%v exited %d: %s", args, code, stderr)
		}
		contains(t, args[0]+"'s error", stderr, "tracegw "+args[0]+": --database-url: ", "cannot parse")
		if n := strings.Count(stderr, "open index"); n > 1 {
			t.Errorf("%v: %q says open index %d times", args, stderr, n)
		}
	}
}
