package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
	"github.com/tracegw/tracegw/testutil"
)

// gateway is the API wired to a real PostgreSQL index and a bucket.
type gateway struct {
	URL    string
	DB     *index.DB
	GCS    *objstore.GCS
	Client *storage.Client
	Bucket string
	Emu    *testutil.Emu
}

func newGateway(t testing.TB) *gateway {
	t.Helper()
	ctx := t.Context()
	db, err := index.Open(ctx, testutil.PG(t), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	emu := testutil.Emulator(t)
	gcs := objstore.New(emu.Client, emu.Bucket)
	gcs.UseXMLUploads(http.DefaultClient, emu.URL) // as serve does
	svc := tracestore.New(gcs, db, tracestore.Options{Now: time.Now})
	api := httpapi.New(httpapi.Options{Service: svc, Limits: traces.Limits{MaxBody: 1 << 20}, Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	hs := serveChecked(t, api.Handler())
	return &gateway{URL: hs.URL, DB: db, GCS: gcs, Client: emu.Client, Bucket: emu.Bucket, Emu: emu}
}

// call sends a request and returns status, headers and body.
func call(t testing.TB, method, url, contentType string, body []byte, hdr ...string) (int, http.Header, []byte) {
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

// errorOf decodes the API's error body (api/openapi.yaml's Error).
func errorOf(t testing.TB, b []byte) (code, field string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message, Field string }
	}
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatalf("error body %q: %v", b, err)
	}
	return e.Error.Code, e.Error.Field
}
