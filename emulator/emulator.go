package emulator

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"
)

// Options configures an Emulator. Dir is required.
type Options struct {
	// Dir is the filesystem root for objects and side state (metageneration,
	// holds, lifecycle rules, notification configs, clock offset). Reusing a
	// directory resumes where the previous Emulator stopped.
	Dir string
	// PublicHost is the host:port the server is reachable at; fakestorage
	// uses it to route XML API and signed-URL requests. Optional.
	PublicHost string
	// Step is the longest clock step Advance takes between hook calls and
	// lifecycle sweeps; zero means one hour.
	Step time.Duration
	// PubSubClientOptions are passed to pubsub.NewClient when publishing
	// notifications. Without them the client honours PUBSUB_EMULATOR_HOST.
	PubSubClientOptions []option.ClientOption
	// Publish, if set, publishes each notification instead of Pub/Sub (a
	// process that runs its consumer beside the emulator hands them over
	// in memory); topic is the notification config's. An error is logged
	// and counted as a failed publish, as a Pub/Sub error is.
	Publish func(ctx context.Context, topic string, data []byte, attrs map[string]string) error
	// Logger receives the emulator's logs; nil discards them.
	Logger *slog.Logger
	// SigningKey, if set, is the public key V4 signed URLs are checked
	// against (signed.go), as GCS checks them against the service
	// account's; SigningAccessID, if set, is the one access ID (service
	// account e-mail) their credential may name. Without a key, signatures
	// are not checked.
	SigningKey      *rsa.PublicKey
	SigningAccessID string
}

// Hooks are called by Advance. Either may be nil.
type Hooks struct {
	// OnStep runs after each clock step, before the lifecycle sweep, with the
	// new emulator time. It reports how many objects it renewed.
	OnStep func(ctx context.Context, now time.Time) (renewed int, err error)
	// Drain runs once at the end of Advance and reports how many
	// notifications the caller's consumer has processed.
	Drain func(ctx context.Context) (consumed int, err error)
}

// Emulator is an in-process GCS emulator. All methods are safe for
// concurrent use. Close releases its Pub/Sub clients and flushes side state.
type Emulator struct {
	opts    Options
	log     *slog.Logger
	fake    *fakestorage.Server
	fakeH   http.Handler
	backend objectDeleter
	realNow func() time.Time

	offset atomic.Int64 // clock offset in nanoseconds

	mu      sync.Mutex // guards st, journal, uploads, hooks
	st      *snapshot
	journal *os.File
	// journalBytes counts what was appended since the last snapshot.
	journalBytes int64
	uploads      map[string]pendingUpload
	hooks        Hooks

	locks     [128]sync.Mutex // per-object write locks, striped by name
	advanceMu sync.Mutex      // serialises Advance
	sweepMu   sync.Mutex      // serialises ApplyLifecycle

	pub    *publisher
	faults faults
	closed atomic.Bool

	// lagging holds, per bucket, lifecycle rules the sweep goes on applying
	// after the bucket's rules changed (KeepApplyingRules); guarded by mu.
	lagging map[string]laggingRules
}

// objectDeleter is the one fakestorage backend call the emulator needs and
// the fake does not export on Server.
type objectDeleter interface {
	DeleteObject(bucketName, objectName string) error
}

// New starts an emulator rooted at o.Dir, loading any objects and side state
// a previous Emulator left there. It does not listen on a port: serve
// Handler() yourself.
func New(ctx context.Context, o Options) (*Emulator, error) {
	if o.Dir == "" {
		return nil, errors.New("new emulator: Options.Dir is required")
	}
	if o.Step <= 0 {
		o.Step = time.Hour
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "emulator")
	objRoot := filepath.Join(o.Dir, "objects")
	if err := os.MkdirAll(objRoot, 0o700); err != nil {
		return nil, fmt.Errorf("new emulator: create %s: %w", objRoot, err)
	}
	fake, err := fakestorage.NewServerWithOptions(fakestorage.Options{
		StorageRoot: objRoot,
		PublicHost:  o.PublicHost,
		Scheme:      "http",
		NoListener:  true,
		// EventOptions stay zero: the fake's own publisher has the wrong
		// format, and its notificationConfigs registry is never fed.
	})
	if err != nil {
		return nil, fmt.Errorf("new emulator: start fakestorage: %w", err)
	}
	e := &Emulator{
		opts:    o,
		log:     log,
		fake:    fake,
		fakeH:   fake.HTTPHandler(),
		backend: fake.Backend(),
		realNow: time.Now,
		uploads: map[string]pendingUpload{},
		pub:     newPublisher(o.PubSubClientOptions, o.Publish, log),
	}
	if err := e.openState(ctx); err != nil {
		fake.Stop()
		return nil, fmt.Errorf("new emulator: %w", err)
	}
	log.Info("emulator started", "dir", o.Dir, "count", e.objectCount())
	return e, nil
}

// Handler returns the HTTP handler serving the GCS JSON API (including the
// upload and download paths the Go client uses) and the /_emulator/ routes.
func (e *Emulator) Handler() http.Handler {
	return http.HandlerFunc(e.serveHTTP)
}

// CreateBucket creates a bucket if it does not exist yet.
func (e *Emulator) CreateBucket(ctx context.Context, name string) error {
	if err := validBucketName(name); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	if _, err := e.fake.Backend().GetBucket(name); err == nil {
		return nil
	}
	if err := e.createFakeBucket(name); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.putBucketLocked(name, &bucketState{Metageneration: 1}); err != nil {
		return fmt.Errorf("create bucket %s: %w", name, err)
	}
	return nil
}

// Close releases Pub/Sub clients, writes a compact snapshot of the side
// state and stops the fake. It is safe to call more than once.
func (e *Emulator) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	var errs []error
	if err := e.pub.close(); err != nil {
		errs = append(errs, fmt.Errorf("close emulator: pubsub: %w", err))
	}
	e.mu.Lock()
	if err := e.compactLocked(); err != nil {
		errs = append(errs, fmt.Errorf("close emulator: %w", err))
	}
	if err := e.journal.Close(); err != nil {
		errs = append(errs, fmt.Errorf("close emulator: journal: %w", err))
	}
	e.mu.Unlock()
	e.fake.Stop()
	return errors.Join(errs...)
}

// createFakeBucket wraps fakestorage's CreateBucketWithOpts, which panics
// on backend errors.
func (e *Emulator) createFakeBucket(name string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("fakestorage: %v", r)
		}
	}()
	e.fake.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: name})
	return nil
}

// lockObject takes the write lock for one object name and returns its
// release. Every check-then-write on an object happens under it.
func (e *Emulator) lockObject(bucket, name string) func() {
	h := fnv.New32a()
	h.Write([]byte(bucket))
	h.Write([]byte{0})
	h.Write([]byte(name))
	m := &e.locks[h.Sum32()%uint32(len(e.locks))]
	m.Lock()
	return m.Unlock
}
