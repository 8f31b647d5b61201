package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/notify"
)

// PubSubEmulatorBin is where the Google Cloud SDK installs the official
// Pub/Sub emulator (`gcloud components install pubsub-emulator`, or the
// google-cloud-cli-pubsub-emulator package).
const PubSubEmulatorBin = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"

// NotifyResults are the deletion-notification figures: the consumer's own
// ceiling with an in-process transport, the consumer against a bare
// Receive+Ack on the official Pub/Sub emulator, and the index apply alone.
type NotifyResults struct {
	Queue       NotifyRun   `json:"queue"`
	Emulator    EmulatorRun `json:"pubsub_emulator"`
	RowsRemoved int64       `json:"rows_removed"`
	ApplyN      int         `json:"apply_deletions"`
	ApplyPerSec float64     `json:"apply_deletions_per_sec"`
	Err         string      `json:"error,omitempty"`
}

// NotifyRun is one consumer run: messages offered, how many it applied
// (committed and acked), over how long from start to the last ack, and the
// bench process's CPU per 1000 of them (consumer, transport and
// PostgreSQL client; the server's is not in it).
type NotifyRun struct {
	Messages int     `json:"messages"`
	Applied  int64   `json:"applied"`
	Secs     float64 `json:"seconds"`
	PerSec   float64 `json:"deletions_per_sec"`
	CPU1k    float64 `json:"cpu_seconds_per_1000,omitempty"`
}

// EmulatorRun is the consumer on the official Pub/Sub emulator next to a
// bare Receive that only acks the same messages on a second subscription.
type EmulatorRun struct {
	NotifyRun
	BareN       int64   `json:"bare_received"`
	BarePerSec  float64 `json:"bare_receive_ack_per_sec"`
	PublishSecs float64 `json:"publish_seconds"`
	Err         string  `json:"error,omitempty"`
}

// notifyConsumerSettings are the consumer options the bench runs with:
// the defaults, as serve does.
var notifyConsumerSettings = notify.Options{}

// measureNotify runs the three notify measurements over disjoint sets of
// seeded deletions: queue through notify.Queue, emu through the official
// emulator (skipped, with the reason in Emulator.Err, when it is not
// installed), direct straight through index.DB.RemoveManyWithLayers in
// batches of 1000.
func measureNotify(ctx context.Context, dbURL, bucket, tmp string, queue, emu, direct []index.Deletion, window time.Duration) NotifyResults {
	res := NotifyResults{ApplyN: len(direct)}
	db, err := index.Open(ctx, dbURL, index.Options{})
	if err != nil {
		res.Err = err.Error()
		return res
	}
	defer db.Close()
	before, err := countTraces(ctx, dbURL)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	res.Queue, err = notifyViaQueue(ctx, db, bucket, queue, window)
	if err != nil {
		res.Err = err.Error()
	}
	res.Emulator = notifyViaEmulator(ctx, db, bucket, tmp, emu, window)
	if after, err := countTraces(ctx, dbURL); err == nil {
		res.RowsRemoved = before - after
	}
	t0 := time.Now()
	for i := 0; i < len(direct); i += 1000 {
		if _, err := db.RemoveManyWithLayers(ctx, direct[i:min(i+1000, len(direct))]); err != nil {
			res.Err = errors.Join(errors.New(res.Err), err).Error()
			return res
		}
	}
	if d := time.Since(t0); d > 0 && len(direct) > 0 {
		res.ApplyPerSec = float64(len(direct)) / d.Seconds()
	}
	return res
}

// notifyViaQueue publishes GCS-format OBJECT_DELETE notifications of dels
// into a notify.Queue and runs the consumer over it until it has applied
// them all (or window passes): the consumer's own ceiling, end to end
// through decode, decide, batch, commit and ack, with a transport that
// costs next to nothing.
func notifyViaQueue(ctx context.Context, db *index.DB, bucket string, dels []index.Deletion, window time.Duration) (NotifyRun, error) {
	q := notify.NewQueue()
	for _, d := range dels {
		attrs, data := deleteNotification(bucket, d)
		_ = q.Publish(ctx, "gcs", data, attrs)
	}
	c, err := notify.New(q, db, nil, bucket, notifyConsumerSettings)
	if err != nil {
		return NotifyRun{Messages: len(dels)}, err
	}
	return runConsumer(ctx, c, len(dels), window)
}

// runConsumer runs c until it has applied n messages, stalls, or window
// passes, and returns its rate from start to the last progress.
func runConsumer(ctx context.Context, c *notify.Consumer, n int, window time.Duration) (NotifyRun, error) {
	r := NotifyRun{Messages: n}
	cctx, stop := context.WithCancel(ctx)
	defer stop()
	runErr := make(chan error, 1)
	cpu0, _ := readProc(os.Getpid())
	t0 := time.Now()
	go func() { runErr <- c.Run(cctx) }()
	// Poll the counter (the consumer has no completion signal): done when
	// all are applied, or when nothing was applied for stallAfter.
	const stallAfter = 3 * time.Second
	last, lastAt := int64(0), time.Now()
	for ctx.Err() == nil {
		got := c.Applied()
		if got != last {
			last, lastAt = got, time.Now()
		}
		if got >= int64(n) || time.Since(lastAt) > stallAfter || time.Since(t0) > window {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cpu1, _ := readProc(os.Getpid())
	end := lastAt
	if last < int64(n) && time.Since(lastAt) <= stallAfter {
		end = time.Now() // the window ended while it was still applying
	}
	stop()
	err := <-runErr
	r.Applied, r.Secs = last, end.Sub(t0).Seconds()
	if r.Secs > 0 {
		r.PerSec = float64(last) / r.Secs
	}
	if last > 0 {
		r.CPU1k = (cpu1.CPU - cpu0.CPU).Seconds() * 1000 / float64(last)
	}
	if err == nil && last < int64(n) && time.Since(lastAt) > stallAfter {
		err = fmt.Errorf("the consumer applied %d of %d notifications, then nothing for %s", last, n, stallAfter)
	}
	return r, err
}

// notifyViaEmulator publishes dels to a topic of the official Pub/Sub
// emulator with two subscriptions, runs the consumer on one, then a bare
// Receive that only acks on the other.
func notifyViaEmulator(ctx context.Context, db *index.DB, bucket, tmp string, dels []index.Deletion, window time.Duration) EmulatorRun {
	res := EmulatorRun{NotifyRun: NotifyRun{Messages: len(dels)}}
	fail := func(err error) EmulatorRun { res.Err = err.Error(); return res }
	addr, stopEmu, err := startPubSubEmulator(ctx, tmp)
	if err != nil {
		return fail(err)
	}
	defer stopEmu()
	ps, err := pubsub.NewClient(ctx, "bench", option.WithEndpoint(addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())))
	if err != nil {
		return fail(err)
	}
	defer ps.Close()
	for _, sub := range []string{"notify", "bare"} {
		if err := notify.EnsureSubscription(ctx, ps, "bench", "gcs", sub); err != nil {
			return fail(err)
		}
	}
	t0 := time.Now()
	pub := ps.Publisher("gcs")
	results := make([]*pubsub.PublishResult, 0, len(dels))
	for _, d := range dels {
		attrs, data := deleteNotification(bucket, d)
		results = append(results, pub.Publish(ctx, &pubsub.Message{Data: data, Attributes: attrs}))
	}
	for _, r := range results {
		if _, err := r.Get(ctx); err != nil {
			pub.Stop()
			return fail(fmt.Errorf("publish: %w", err))
		}
	}
	pub.Stop()
	res.PublishSecs = time.Since(t0).Seconds()

	c, err := notify.New(notify.Subscription(ps.Subscriber("notify"), notify.DefaultMaxOutstanding), db, nil, bucket, notifyConsumerSettings)
	if err != nil {
		return fail(err)
	}
	if res.NotifyRun, err = runConsumer(ctx, c, len(dels), window); err != nil {
		res.Err = err.Error()
	}
	bare := ps.Subscriber("bare")
	notify.Subscription(bare, notify.DefaultMaxOutstanding) // the same flow control
	res.BareN, res.BarePerSec = receiveAckOnly(ctx, bare, int64(len(dels)), window)
	return res
}

// receiveAckOnly receives up to n messages with a Receive that only acks,
// for at most window, and returns how many arrived and their rate from
// the start to the last ack (as runConsumer measures the consumer).
func receiveAckOnly(ctx context.Context, sub *pubsub.Subscriber, n int64, window time.Duration) (int64, float64) {
	ctx, cancel := context.WithTimeout(ctx, window)
	defer cancel()
	var got, last atomic.Int64 // last: unix nanoseconds
	t0 := time.Now()
	_ = sub.Receive(ctx, func(_ context.Context, m *pubsub.Message) {
		m.Ack()
		last.Store(time.Now().UnixNano())
		if got.Add(1) >= n {
			cancel()
		}
	})
	d := time.Duration(last.Load() - t0.UnixNano())
	if d <= 0 {
		return got.Load(), 0
	}
	return got.Load(), float64(got.Load()) / d.Seconds()
}

// startPubSubEmulator runs the official Pub/Sub emulator on a loopback
// port, as a process group of its own (the launcher starts a JVM), and
// returns its address and a func that stops it.
func startPubSubEmulator(ctx context.Context, tmp string) (string, func(), error) {
	if _, err := os.Stat(PubSubEmulatorBin); err != nil {
		return "", nil, fmt.Errorf("the official Pub/Sub emulator is not installed (%v); install the Google Cloud SDK's pubsub-emulator component", err)
	}
	addr, err := freeLoopbackAddr()
	if err != nil {
		return "", nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	dir := filepath.Join(tmp, "pubsub-emulator")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	logf, err := os.Create(filepath.Join(dir, "emulator.log"))
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(PubSubEmulatorBin, "--host=127.0.0.1", "--port="+port)
	cmd.Dir = dir
	cmd.Env = append(childEnv(), "JAVA_OPTS=-Djava.io.tmpdir="+dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return "", nil, fmt.Errorf("start the Pub/Sub emulator: %w", err)
	}
	ch := &child{name: "pubsub emulator", cmd: cmd, log: logf, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(ch.done) }()
	stop := func() {
		// The JVM is the launcher's child: end the whole group.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-ch.done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-ch.done
		}
		logf.Close()
	}
	if err := ch.waitHTTP(ctx, "http://"+addr+"/", 90*time.Second); err != nil {
		stop()
		return "", nil, err
	}
	return addr, stop, nil
}

// notifySettingsText states the consumer's flow control as the report
// prints it.
var notifySettingsText = fmt.Sprintf("MaxOutstandingMessages %d, batches of up to %d or %s after the first message, ack after commit (the client extends leases until then)",
	notify.DefaultMaxOutstanding, notify.DefaultMaxBatch, notify.DefaultMaxWait)
