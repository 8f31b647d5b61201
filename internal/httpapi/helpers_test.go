package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// gateway is the API wired to a real PostgreSQL index and a bucket.
type gateway struct {
	URL    string
	DB     *index.DB
	GCS    *objstore.GCS
	Client *storage.Client
	Bucket string
}

func newGateway(t *testing.T) *gateway {
	t.Helper()
	ctx := t.Context()
	db, err := index.Open(ctx, testutil.PG(t), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "traces"})
	client := srv.Client()
	gcs := objstore.New(client, "traces")
	svc := traces.NewService(gcs, db, time.Now, nil)
	api := httpapi.New(httpapi.Options{Service: svc, Limits: traces.Limits{MaxBody: 1 << 20}})
	hs := httptest.NewServer(api.Handler())
	t.Cleanup(hs.Close)
	return &gateway{URL: hs.URL, DB: db, GCS: gcs, Client: client, Bucket: "traces"}
}

// call sends a request and returns status, headers and body.
func call(t *testing.T, method, url, contentType string, body []byte, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// errorOf decodes API.md's error body.
func errorOf(t *testing.T, b []byte) (code, field string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message, Field string }
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	return e.Error.Code, e.Error.Field
}
