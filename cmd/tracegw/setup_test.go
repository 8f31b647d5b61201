package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// TestSetupFromREADME follows the README's commands against the emulators
// (the official Pub/Sub emulator, the GCS emulator, PostgreSQL): serve
// --run-notify refuses to start before setup-bucket and names it;
// setup-bucket --dry-run changes nothing; setup-bucket makes the whole
// notification path and prints it; a second run prints nothing; serve
// --run-gc --run-notify then starts, and deleting a saved trace's object
// removes its index rows through the notification. It sets
// PUBSUB_EMULATOR_HOST, so it is not parallel.
func TestSetupFromREADME(t *testing.T) {
	t.Setenv("PUBSUB_EMULATOR_HOST", testutil.PubSubEmulator(t))
	emu := testutil.Emulator(t) // publishes to PUBSUB_EMULATOR_HOST
	db := testutil.PG(t)
	suffix := strings.TrimPrefix(emu.Bucket, "test-")
	backends := []string{"--gcs-endpoint", emu.URL, "--bucket", emu.Bucket,
		"--pubsub-project", "tracegw-setup", "--topic", "gcs-" + suffix, "--subscription", "notify-" + suffix}
	serveArgs := append([]string{"serve", "--insecure-no-auth", "--listen", "127.0.0.1:0", "--database-url", db,
		"--run-gc", "--run-notify", "--shutdown-timeout", "5s"}, backends...)

	if code, _, stderr := runCmd(t, "migrate", "--database-url", db); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, stderr)
	}
	notifyOnly := append([]string{"serve", "--insecure-no-auth", "--listen", "127.0.0.1:0", "--database-url", db, "--run-notify"}, backends...)
	code, _, stderr := runCmd(t, notifyOnly...)
	if code != 1 || !strings.Contains(stderr, "does not exist: run `tracegw setup-bucket`") || strings.Contains(stderr, "rpc error") {
		t.Errorf("serve --run-notify before setup-bucket: exit %d, want 1 and a message naming setup-bucket: %s", code, stderr)
	}

	setup := append([]string{"setup-bucket"}, backends...)
	code, dry, stderr := runCmd(t, append(setup, "--dry-run")...)
	if code != 0 {
		t.Fatalf("setup-bucket --dry-run: exit %d: %s", code, stderr)
	}
	for _, want := range []string{
		"pubsub: would create topic projects/tracegw-setup/topics/gcs-" + suffix + "\n",
		"pubsub: would create dead-letter topic projects/tracegw-setup/topics/notify-" + suffix + "-dead-letter\n",
		"pubsub: would create subscription projects/tracegw-setup/subscriptions/notify-" + suffix + " on projects/tracegw-setup/topics/gcs-" + suffix +
			": ack deadline 60s, message retention 7d, expiration never, dead letters to projects/tracegw-setup/topics/notify-" + suffix +
			"-dead-letter after 100 delivery attempts, retry backoff 10s–10m0s\n",
		"bucket " + emu.Bucket + ": would add lifecycle rule {Delete if daysSinceCustomTime=7}\n",
		"bucket " + emu.Bucket + ": would add notification config: OBJECT_DELETE events to projects/tracegw-setup/topics/gcs-" + suffix + ", payload JSON_API_V1\n",
	} {
		if !strings.Contains(dry, want) {
			t.Errorf("dry run lacks %q:\n%s", want, dry)
		}
	}
	if code, again, _ := runCmd(t, append(setup, "--dry-run")...); code != 0 || again != dry {
		t.Errorf("a second dry run differs (it changed something): exit %d\n%s", code, again)
	}

	code, out, stderr := runCmd(t, setup...)
	if code != 0 {
		t.Fatalf("setup-bucket: exit %d: %s", code, stderr)
	}
	if want := strings.ReplaceAll(dry, ": would ", ": "); out != want {
		t.Errorf("setup-bucket printed\n%s\nwant what the dry run announced:\n%s", out, want)
	}
	if code, out, stderr := runCmd(t, setup...); code != 0 || out != "" {
		t.Errorf("second setup-bucket: exit %d, printed %q (stderr %s); want nothing", code, out, stderr)
	}

	// serve now starts and its consumer applies a deletion.
	ctx, sigterm := context.WithCancel(t.Context())
	defer sigterm()
	exit := make(chan int, 1)
	var logs syncWriter
	go func() { exit <- run(ctx, serveArgs, io.Discard, &logs) }()
	addr := regexp.MustCompile(`"msg":"serving","addr":"([^"]+)"`)
	testutil.WaitFor(t, 30*time.Second, "serve to log its address", func() bool { return addr.MatchString(logs.String()) })
	base := "http://" + addr.FindStringSubmatch(logs.String())[1]
	canvas := "7d3f5a1c-0000-4000-8000-0000000000dd"
	resp, err := http.Post(base+"/v1/canvases/"+canvas+"/traces", "application/json", strings.NewReader(`{"rootTLID":"1"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	id := regexp.MustCompile(`"traceID":"([^"]+)"`).FindStringSubmatch(string(body))
	if resp.StatusCode != http.StatusCreated || id == nil {
		t.Fatalf("save: %d %s", resp.StatusCode, body)
	}
	cv, _ := traces.ParseCanvasID(canvas)
	tid, _ := traces.ParseTraceID(id[1])
	if err := emu.Client.Bucket(emu.Bucket).Object(traces.TraceKey(cv, tid)).Delete(t.Context()); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	testutil.WaitFor(t, 30*time.Second, "the deleted object's rows to go", func() bool {
		var n int
		err := conn.QueryRow(t.Context(), `SELECT count(*) FROM traces WHERE trace_id = $1`, id[1]).Scan(&n)
		return err == nil && n == 0
	})
	sigterm()
	if code := <-exit; code != 0 {
		t.Errorf("serve exited %d; logs:\n%s", code, logs.String())
	}
	if strings.Contains(logs.String(), "subscription drift") {
		t.Errorf("serve warned about the subscription setup-bucket made:\n%s", logs.String())
	}
}

// TestLoadSetupFlags: setup-bucket's dead-letter flags, from the command
// line and the environment.
func TestLoadSetupFlags(t *testing.T) {
	t.Parallel()
	c, err := Load("setup-bucket", []string{"--dead-letter-topic", "dl", "--subscription", "sub"}, func(k string) string {
		return map[string]string{"TRACEGW_MAX_DELIVERY_ATTEMPTS": "20"}[k]
	}, nil)
	if err != nil || c.DeadLetterTopic != "dl" || c.MaxDeliveryAttempts != 20 || c.Subscription != "sub" {
		t.Errorf("Load = %+v, %v", c, err)
	}
	if c, err := Load("setup-bucket", nil, func(string) string { return "" }, nil); err != nil || c.MaxDeliveryAttempts != 100 || c.DeadLetterTopic != "" {
		t.Errorf("defaults: %+v, %v", c, err)
	}
	if _, err := Load("setup-bucket", nil, func(k string) string {
		return map[string]string{"TRACEGW_MAX_DELIVERY_ATTEMPTS": "many"}[k]
	}, nil); err == nil || !strings.Contains(err.Error(), "TRACEGW_MAX_DELIVERY_ATTEMPTS") {
		t.Errorf("bad env: %v, want an error naming the variable", err)
	}
}
