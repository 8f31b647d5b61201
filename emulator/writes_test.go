package emulator_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/tracegw/tracegw/emulator"
)

// Canary for the pinned fake-gcs-server: its own upload precondition check
// still answers 412 (older releases ignored preconditions), both bare and
// behind the emulator.
func TestCanaryDoesNotExistGives412(t *testing.T) {
	t.Parallel()
	fake, err := fakestorage.NewServerWithOptions(fakestorage.Options{StorageRoot: t.TempDir(), NoListener: true})
	if err != nil {
		t.Fatalf("fakestorage: %v", err)
	}
	t.Cleanup(fake.Stop)
	fake.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "canary"})
	srv := httptest.NewServer(fake.HTTPHandler())
	t.Cleanup(srv.Close)
	bare, err := storage.NewClient(t.Context(), option.WithEndpoint(srv.URL+"/storage/v1/"), option.WithoutAuthentication(), storage.WithJSONReads())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { bare.Close() })
	v := newEnv(t, emulator.Options{})
	for name, o := range map[string]*storage.ObjectHandle{
		"fakestorage": bare.Bucket("canary").Object("once"),
		"emulator":    v.obj("once"),
	} {
		t.Run(name, func(t *testing.T) {
			once := o.If(storage.Conditions{DoesNotExist: true})
			if _, err := v.tryPut(t, once, "1", nil); err != nil {
				t.Fatalf("first create: %v", err)
			}
			if _, err := v.tryPut(t, once, "2", nil); code(err) != 412 {
				t.Fatalf("second create: got %v, want 412", err)
			}
			r, err := o.NewReader(t.Context())
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			defer r.Close()
			if b, _ := io.ReadAll(r); string(b) != "1" {
				t.Errorf("content %q, want the first write", b)
			}
		})
	}
}

// Resumable (chunked) uploads take the same checks as multipart ones.
func TestResumableUpload(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{})
	data := strings.Repeat("0123456789abcdef", 40<<10) // 640 KiB: three 256 KiB chunks
	chunked := func(w *storage.Writer) {
		w.ChunkSize = 256 << 10
		w.TemporaryHold = true
	}
	a := v.put(t, "big", data, chunked)
	if a.Size != int64(len(data)) || !a.TemporaryHold || a.Metageneration != 1 {
		t.Fatalf("resumable upload attrs: size %d hold %v metageneration %d", a.Size, a.TemporaryHold, a.Metageneration)
	}
	if _, err := v.tryPut(t, v.obj("big"), data, func(w *storage.Writer) { w.ChunkSize = 256 << 10 }); code(err) != 403 {
		t.Fatalf("resumable overwrite of held object: got %v, want 403", err)
	}
	once := v.obj("big").If(storage.Conditions{DoesNotExist: true})
	if _, err := v.tryPut(t, once, data, func(w *storage.Writer) { w.ChunkSize = 256 << 10 }); code(err) != 412 {
		t.Fatalf("resumable create-only over existing: got %v, want 412", err)
	}
}

// V4 signed-URL PUTs (the XML API) honour x-goog-if-generation-match and
// x-goog-custom-time, which fake-gcs-server ignores, and notify like any
// upload.
func TestSignedURLUpload(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{})
	topic := v.topic(t, "signed")
	v.notify(t, storage.Notification{TopicID: topic, EventTypes: []string{storage.ObjectFinalizeEvent}})
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatalf("key: %v", err)
	}
	pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	ct := v.secs()
	headers := []string{"x-goog-if-generation-match:0", "x-goog-custom-time:" + ct.Format(time.RFC3339)}
	u, err := v.Client.Bucket(v.Bucket).SignedURL("up/1", &storage.SignedURLOptions{
		Scheme: storage.SigningSchemeV4, Method: http.MethodPut, Expires: time.Now().Add(10 * time.Minute),
		GoogleAccessID: "emu@example.iam.gserviceaccount.com", PrivateKey: pemKey,
		ContentType: "application/json", Headers: headers,
		Hostname: strings.TrimPrefix(v.URL, "http://"), Insecure: true,
	})
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	put := func() int {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, u, strings.NewReader(`{"a":1}`))
		if err != nil {
			t.Fatalf("request: %v", err)
		}
		req.Header.Set("Content-Type", "application/json")
		for _, h := range headers {
			k, val, _ := strings.Cut(h, ":")
			req.Header.Set(k, val)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("put: %v", err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := put(); s != 200 {
		t.Fatalf("signed PUT: %d", s)
	}
	a := v.attrs(t, "up/1")
	if !a.CustomTime.Equal(ct) || a.ContentType != "application/json" || a.Size != 7 || a.Metageneration != 1 {
		t.Errorf("signed upload attrs: customTime %s type %s size %d metageneration %d", a.CustomTime, a.ContentType, a.Size, a.Metageneration)
	}
	if s := put(); s != 412 {
		t.Errorf("replayed signed PUT: %d, want 412", s)
	}
	if n := len(v.messages(topic)); n != 1 {
		t.Errorf("%d FINALIZE messages, want 1", n)
	}
}

// With PublicHost set (testutil sets it), the Go client's default XML API
// reads work too, and honour read preconditions.
func TestXMLReads(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{})
	a := v.put(t, "x/y", "xml", nil)
	c, err := storage.NewClient(t.Context(), option.WithEndpoint(v.URL+"/storage/v1/"), option.WithoutAuthentication())
	if err != nil {
		t.Fatalf("client: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	o := c.Bucket(v.Bucket).Object("x/y")
	r, err := o.NewReader(t.Context())
	if err != nil {
		t.Fatalf("XML read: %v", err)
	}
	b, _ := io.ReadAll(r)
	r.Close()
	if string(b) != "xml" {
		t.Errorf("XML read got %q", b)
	}
	if _, err := v.obj("x/y").If(storage.Conditions{GenerationMatch: a.Generation + 1}).NewReader(t.Context()); code(err) != 412 {
		t.Errorf("JSON read with stale generation: got %v, want 412", err)
	}
}

// Copies and composes create generations like uploads: preconditions and
// holds on the destination, a fresh metageneration, FINALIZE published.
func TestCopyAndCompose(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{})
	topic := v.topic(t, "fin")
	v.notify(t, storage.Notification{TopicID: topic, EventTypes: []string{storage.ObjectFinalizeEvent}})
	v.put(t, "src", "abc", nil)
	v.put(t, "held", "h", func(w *storage.Writer) { w.TemporaryHold = true })
	a, err := v.obj("dst").CopierFrom(v.obj("src")).Run(t.Context())
	if err != nil || a.Metageneration != 1 || a.Size != 3 {
		t.Fatalf("copy: %+v, %v", a, err)
	}
	if _, err := v.obj("dst").If(storage.Conditions{DoesNotExist: true}).CopierFrom(v.obj("src")).Run(t.Context()); code(err) != 412 {
		t.Errorf("create-only copy over existing: got %v, want 412", err)
	}
	if _, err := v.obj("held").CopierFrom(v.obj("src")).Run(t.Context()); code(err) != 403 {
		t.Errorf("copy over held object: got %v, want 403", err)
	}
	c, err := v.obj("both").ComposerFrom(v.obj("src"), v.obj("dst")).Run(t.Context())
	if err != nil || c.Size != 6 || c.Metageneration != 1 {
		t.Fatalf("compose: %+v, %v", c, err)
	}
	var got []string
	for _, m := range v.got(t, topic) {
		got = append(got, m.object)
	}
	if want := []string{"src", "held", "dst", "both"}; !slices.Equal(got, want) {
		t.Errorf("FINALIZE for %v, want %v", got, want)
	}
}

// Concurrent create-only uploads of one name: exactly one wins, the rest
// get 412 (the check and the write happen under one per-object lock).
func TestConcurrentCreateOnly(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{})
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := v.tryPut(t, v.obj("once").If(storage.Conditions{DoesNotExist: true}), strings.Repeat("x", i+1), nil)
			errs <- err
		}()
	}
	wins, lost := 0, 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			wins++
		case code(err) == 412:
			lost++
		default:
			t.Errorf("upload: %v", err)
		}
	}
	if wins != 1 || lost != n-1 {
		t.Errorf("%d wins and %d 412s, want 1 and %d", wins, lost, n-1)
	}
}
