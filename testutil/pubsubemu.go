package testutil

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// PubSubEmulatorBin is the official Pub/Sub emulator as the Google Cloud SDK
// installs it (component pubsub-emulator; it needs Java 11 or newer).
const PubSubEmulatorBin = "/usr/lib/google-cloud-sdk/platform/pubsub-emulator/bin/cloud-pubsub-emulator"

const pubsubInstallHint = "install the official Pub/Sub emulator and Java " +
	"(Debian/Ubuntu: apt-get install google-cloud-cli-pubsub-emulator openjdk-17-jre-headless; " +
	"or gcloud components install pubsub-emulator beta); expected at " + PubSubEmulatorBin

// pubsubStartTimeout bounds the emulator's start: ~1.5 s on an idle 2-vCPU
// host, several seconds when test binaries run in parallel.
const pubsubStartTimeout = 90 * time.Second

var (
	pubsubOnce sync.Once
	pubsubAddr string
	pubsubErr  error
)

// PubSubEmulator starts the official Pub/Sub emulator (the Java binary of
// the Google Cloud SDK) on a free port of 127.0.0.1, once per test binary,
// waits until it answers and returns its host:port. The caller points the
// Pub/Sub client at it with t.Setenv("PUBSUB_EMULATOR_HOST", addr), so such
// a test cannot run in parallel; give each test its own topic and
// subscription, since the emulator is shared by the whole binary. Use it
// where pstest differs from the real service (dead-letter policies,
// redelivery); PubSub (pstest) is faster for everything else.
//
// There is no hook at the end of a test binary, so the emulator is bound to
// the binary's life instead: it runs in its own process group (a ^C to `go
// test` does not race our cleanup) with Pdeathsig SIGKILL, so the kernel
// kills it as soon as the test binary dies, however it dies. Pdeathsig fires
// when the thread that started the child exits, so the child is started from
// a goroutine locked to its OS thread that lives as long as the emulator.
// Its working directory and logs are in a temporary directory
// (tracegw-pubsub-*) that is left behind for post-mortems.
//
// If the binary or Java is missing, or the emulator does not answer within
// 90 s, PubSubEmulator fails the test with an install hint; it never skips.
func PubSubEmulator(t testing.TB) string {
	t.Helper()
	pubsubOnce.Do(func() { pubsubAddr, pubsubErr = startPubSubEmulator() })
	if pubsubErr != nil {
		t.Fatalf("testutil.PubSubEmulator: %v", pubsubErr)
	}
	return pubsubAddr
}

func startPubSubEmulator() (string, error) {
	if _, err := os.Stat(PubSubEmulatorBin); err != nil {
		return "", fmt.Errorf("emulator not found (%v): %s", err, pubsubInstallHint)
	}
	if _, err := exec.LookPath("java"); err != nil && os.Getenv("JAVA_HOME") == "" {
		return "", fmt.Errorf("java not found (%v): %s", err, pubsubInstallHint)
	}
	dir, err := os.MkdirTemp("", "tracegw-pubsub-")
	if err != nil {
		return "", err
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logPath := filepath.Join(dir, "emulator.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}

	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		// Never unlocked: the thread ends with this goroutine, which ends
		// only when the emulator has exited, so Pdeathsig cannot fire early.
		runtime.LockOSThread()
		defer close(exited)
		cmd := exec.Command(PubSubEmulatorBin, "--host=127.0.0.1", "--port="+strconv.Itoa(port))
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "JAVA_OPTS=-Djava.io.tmpdir="+dir)
		cmd.Stdout, cmd.Stderr = logFile, logFile
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		logFile.Close()
	}()
	if err := <-started; err != nil {
		return "", fmt.Errorf("start %s: %w: %s", PubSubEmulatorBin, err, pubsubInstallHint)
	}
	if err := waitPubSub(addr, exited); err != nil {
		out, _ := os.ReadFile(logPath)
		return "", fmt.Errorf("%w\nemulator log %s:\n%s\n%s", err, logPath, pubsubLogTail(out, 4096), pubsubInstallHint)
	}
	return addr, nil
}

// waitPubSub polls the emulator's HTTP root (it answers "Ok" once both its
// REST and gRPC services are up) until it answers 200, the process exits,
// or pubsubStartTimeout passes.
func waitPubSub(addr string, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), pubsubStartTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return errors.New("the emulator exited before it answered")
		case <-ctx.Done():
			return fmt.Errorf("the emulator did not answer on %s within %s", addr, pubsubStartTimeout)
		case <-tick.C:
		}
	}
}

func pubsubLogTail(b []byte, n int) []byte {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b
}
