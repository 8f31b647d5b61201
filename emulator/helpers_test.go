package emulator_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/testutil"
)

const project = "emu-test"

// env is an emulator wired to its own pstest server.
type env struct {
	*testutil.Emu
	ps *pstest.Server
	pc *pubsub.Client
}

func newEnv(t *testing.T, o emulator.Options) *env {
	t.Helper()
	ps, opts := testutil.PubSubServer(t)
	o.PubSubClientOptions = opts
	em := testutil.EmulatorWithOptions(t, o)
	return &env{Emu: em, ps: ps, pc: newPubSubClient(t, opts)}
}

func newPubSubClient(t *testing.T, opts []option.ClientOption) *pubsub.Client {
	t.Helper()
	pc, err := pubsub.NewClient(t.Context(), project, opts...)
	if err != nil {
		t.Fatalf("pubsub client: %v", err)
	}
	t.Cleanup(func() { pc.Close() })
	return pc
}

func removeFile(dir, name string) error {
	err := os.Remove(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// topic creates a topic and returns its short ID.
func (v *env) topic(t *testing.T, id string) string {
	t.Helper()
	_, err := v.pc.TopicAdminClient.CreateTopic(t.Context(), &pubsubpb.Topic{Name: "projects/" + project + "/topics/" + id})
	if err != nil {
		t.Fatalf("create topic %s: %v", id, err)
	}
	return id
}

// notify adds a notification config on the env's bucket.
func (v *env) notify(t *testing.T, n storage.Notification) *storage.Notification {
	t.Helper()
	n.TopicProjectID = project
	got, err := v.Client.Bucket(v.Bucket).AddNotification(t.Context(), &n)
	if err != nil {
		t.Fatalf("add notification: %v", err)
	}
	return got
}

// messages returns what was published to topic, in publish order.
func (v *env) messages(topic string) []*pstest.Message {
	var out []*pstest.Message
	for _, m := range v.ps.Messages() {
		if m.Topic == "projects/"+project+"/topics/"+topic {
			out = append(out, m)
		}
	}
	seq := func(m *pstest.Message) int { n, _ := strconv.Atoi(strings.TrimPrefix(m.ID, "m")); return n }
	slices.SortFunc(out, func(a, b *pstest.Message) int { return seq(a) - seq(b) }) // pstest IDs count up
	return out
}

func (v *env) obj(name string) *storage.ObjectHandle {
	return v.Client.Bucket(v.Bucket).Object(name)
}

// put uploads data as name with the writer adjusted by opt.
func (v *env) put(t *testing.T, name, data string, opt func(*storage.Writer)) *storage.ObjectAttrs {
	t.Helper()
	attrs, err := v.tryPut(t, v.obj(name), data, opt)
	if err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	return attrs
}

func (v *env) tryPut(t *testing.T, o *storage.ObjectHandle, data string, opt func(*storage.Writer)) (*storage.ObjectAttrs, error) {
	t.Helper()
	w := o.NewWriter(t.Context())
	w.ChunkSize = 0
	if opt != nil {
		opt(w)
	}
	if _, err := io.WriteString(w, data); err != nil {
		w.Close()
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return w.Attrs(), nil
}

func (v *env) attrs(t *testing.T, name string) *storage.ObjectAttrs {
	t.Helper()
	a, err := v.obj(name).Attrs(t.Context())
	if err != nil {
		t.Fatalf("attrs %s: %v", name, err)
	}
	return a
}

func (v *env) exists(t *testing.T, name string) bool {
	t.Helper()
	_, err := v.obj(name).Attrs(t.Context())
	if errors.Is(err, storage.ErrObjectNotExist) {
		return false
	}
	if err != nil {
		t.Fatalf("attrs %s: %v", name, err)
	}
	return true
}

func (v *env) advance(t *testing.T, d time.Duration) emulator.Summary {
	t.Helper()
	s, err := v.E.Advance(t.Context(), d)
	if err != nil {
		t.Fatalf("advance %s: %v", d, err)
	}
	return s
}

// code returns the HTTP status of a googleapi error, or 0.
func code(err error) int {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	return 0
}

// do sends a raw request to the emulator and returns status and body.
func (v *env) do(t *testing.T, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, v.URL+path, rd)
	if err != nil {
		t.Fatalf("request: %v", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if strings.HasPrefix(path, "/_emulator/") {
		req.Header.Set(emulator.ControlHeader, "1")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read body: %v", err)
	}
	return resp.StatusCode, data
}

func (v *env) objectPath(name string) string {
	return "/storage/v1/b/" + v.Bucket + "/o/" + url.PathEscape(name)
}

// secs is now on the emulator clock, truncated as the Go client sends it.
func (v *env) secs() time.Time { return v.E.Now().Truncate(time.Second) }

func mustContain(t *testing.T, s, sub string) {
	t.Helper()
	if !strings.Contains(s, sub) {
		t.Errorf("got %q, want it to contain %q", s, sub)
	}
}
