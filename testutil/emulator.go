package testutil

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"
	"cloud.google.com/go/storage"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/tracegw/tracegw/emulator"
)

// Emu is a running in-process GCS emulator with a fresh bucket and a
// storage client pointed at it over loopback HTTP.
type Emu struct {
	E      *emulator.Emulator
	URL    string // http://127.0.0.1:PORT
	Bucket string
	Client *storage.Client
}

// Emulator starts an emulator with its own directory, clock and bucket,
// served on a loopback httptest.Server. Everything is closed by t.Cleanup;
// any setup error fails the test.
func Emulator(t testing.TB) *Emu {
	t.Helper()
	return EmulatorWithOptions(t, emulator.Options{})
}

// EmulatorWithOptions is Emulator with options, for example
// PubSubClientOptions from PubSub. An empty o.Dir becomes t.TempDir(); an
// empty o.PublicHost becomes the server's host:port, so XML API and V4
// signed URLs (SignedURLOptions{Hostname: host, Insecure: true}) work too.
func EmulatorWithOptions(t testing.TB, o emulator.Options) *Emu {
	t.Helper()
	if o.Dir == "" {
		o.Dir = FastTempDir(t)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	if o.PublicHost == "" {
		o.PublicHost = ln.Addr().String()
	}
	e, err := emulator.New(t.Context(), o)
	if err != nil {
		ln.Close()
		t.Fatalf("start emulator: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close emulator: %v", err)
		}
	})
	srv := httptest.NewUnstartedServer(e.Handler())
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	client, err := StorageClient(t, srv.URL)
	if err != nil {
		t.Fatalf("storage client: %v", err)
	}
	bucket := "test-" + randomHex(t, 6)
	if err := e.CreateBucket(t.Context(), bucket); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
	return &Emu{E: e, URL: srv.URL, Bucket: bucket, Client: client}
}

// StorageClient returns a storage client for an emulator at url (as served
// by httptest), closed by t.Cleanup.
func StorageClient(t testing.TB, url string) (*storage.Client, error) {
	t.Helper()
	c, err := storage.NewClient(t.Context(),
		option.WithEndpoint(url+"/storage/v1/"),
		option.WithoutAuthentication(),
		storage.WithJSONReads())
	if err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Close() })
	return c, nil
}

// PubSub starts an in-process pstest server and returns client options
// that reach it (for pubsub.NewClient or emulator.Options).
func PubSub(t testing.TB) []option.ClientOption {
	t.Helper()
	_, opts := PubSubServer(t)
	return opts
}

// PubSubServer is PubSub that also returns the server, whose Messages()
// lists everything published to it.
func PubSubServer(t testing.TB) (*pstest.Server, []option.ClientOption) {
	t.Helper()
	srv := pstest.NewServer()
	t.Cleanup(func() { srv.Close() })
	return srv, []option.ClientOption{
		option.WithEndpoint(srv.Addr),
		option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())),
	}
}

// WaitFor polls cond every few milliseconds until it returns true, failing
// the test with what (what it waited for) if timeout passes first. Prefer
// waiting on a channel when one exists.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %s for %s", timeout, what)
		}
		select {
		case <-tick.C:
		case <-t.Context().Done():
			t.Fatalf("waiting for %s: %v", what, t.Context().Err())
		}
	}
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("random: %v", err)
	}
	return hex.EncodeToString(b)
}

// FastTempDir is a directory on tmpfs (/dev/shm) when there is one, else
// t.TempDir(). fake-gcs-server's filesystem backend syncs every write to
// disk twice, so on a disk the emulator manages about 100 uploads a second
// and on tmpfs several hundred; tests only need the semantics, not the
// durability.
func FastTempDir(t testing.TB) string {
	t.Helper()
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("/dev/shm", "tracegw-emu-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}
