package clientcompat_test

import (
	"log/slog"

	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/internal/canvases"
	"github.com/tracegw/tracegw/internal/holds"
	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
	"github.com/tracegw/tracegw/internal/ttl"
	"github.com/tracegw/tracegw/testutil"
)

// testKey signs the tests' bearer tokens.
var testKey = []byte("0123456789abcdef0123456789abcdef-client-tests")

// gateway is a real gateway (PostgreSQL index, emulated bucket, JWT auth,
// holds) served on loopback. wrap, when set, sits in front of the API
// handler (faults the test cannot cause for real).
type gateway struct {
	URL string
	DB  *index.DB
}

func newGateway(t *testing.T, wrap func(http.Handler) http.Handler) *gateway {
	t.Helper()
	emu := testutil.Emulator(t)
	return serveGateway(t, objstore.New(emu.Client, emu.Bucket), emu.E.Now, wrap)
}

// newMemGateway is a gateway on fake-gcs-server's memory backend, for
// layers: the emulator's filesystem backend stores object names as paths,
// so a trace ({c}/traces/{id}, a file) and its layers
// ({c}/traces/{id}/layers/N) cannot both exist there (see
// internal/traces/replace_test.go's newLayerRig).
func newMemGateway(t *testing.T) *gateway {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{NoListener: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: "traces"})
	return serveGateway(t, objstore.New(srv.Client(), "traces"), time.Now, nil)
}

func serveGateway(t *testing.T, gcs *objstore.GCS, now func() time.Time, wrap func(http.Handler) http.Handler) *gateway {
	t.Helper()
	return serveGatewayWith(t, gcs, tracestore.Options{Now: now}, wrap)
}

// serveGatewayWith is serveGateway with the trace service's options.
func serveGatewayWith(t *testing.T, gcs *objstore.GCS, so tracestore.Options, wrap func(http.Handler) http.Handler) *gateway {
	t.Helper()
	now := so.Now
	so.Limits = traces.Limits{MaxBody: 1 << 20}
	db, err := index.Open(t.Context(), testutil.PG(t), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	hs := holds.New(gcs, db, holds.Options{Now: now})
	gc, err := ttl.New(gcs, db, ttl.DefaultPolicy(), now, nil, nil, ttl.Options{Holds: hs})
	if err != nil {
		t.Fatal(err)
	}
	so.Renewer, so.Holds, so.Policy = gc, hs, gc
	api := httpapi.New(httpapi.Options{
		Service:  tracestore.New(gcs, db, so),
		Holds:    hs,
		Canvases: canvases.New(gcs, db, canvases.Options{Now: now, Policy: gc, Renewer: gc}),
		Auth:     &httpapi.BearerAuth{Key: testKey},
		Limits:   traces.Limits{MaxBody: 1 << 20},
		Logger:   slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	var h http.Handler = api.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &gateway{URL: srv.URL, DB: db}
}

// token mints a token for role, scoped to canvas unless it is empty.
func token(t *testing.T, role httpapi.Role, canvas client.CanvasID) string {
	t.Helper()
	c := httpapi.Claims{Role: role, Subject: "client-test", Expiry: time.Now().Add(time.Hour)}
	if canvas != "" {
		id, err := traces.ParseCanvasID(string(canvas))
		if err != nil {
			t.Fatal(err)
		}
		c.Canvas = &id
	}
	tok, err := httpapi.Sign(testKey, c)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// newClient is an admin client of g with fast retries.
func (g *gateway) newClient(t *testing.T, opts ...client.Option) *client.Client {
	t.Helper()
	opts = append([]client.Option{client.WithRetry(5, time.Millisecond, 5*time.Millisecond)}, opts...)
	c := client.New(g.URL, token(t, httpapi.RoleAdmin, ""), opts...)
	t.Cleanup(c.Close)
	return c
}

// newCanvas returns a fresh random canvas ID.
func newCanvas() client.CanvasID {
	return client.CanvasID(traces.NewTraceID(time.Now()).String()) // any UUID version names a canvas
}

func sampleTrace(root client.TLID, tlids ...client.TLID) *client.Trace {
	return &client.Trace{
		RootTLID: root,
		TLIDs:    tlids,
		Input:    []client.InputVar{{Name: "request", Value: client.MustValue(map[string]any{"body": "hello", "n": 3})}},
		FunctionResults: []client.FunctionResult{{
			TLID: root, ExprID: 42, FnName: "HttpClient.get", ArgHash: "a1b2",
			Value: client.MustValue([]any{"ok", 200}),
		}},
	}
}
