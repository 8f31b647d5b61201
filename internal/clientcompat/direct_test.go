package clientcompat_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/tracegw/tracegw/client"
	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
	"github.com/tracegw/tracegw/testutil"
)

// counting counts the requests of one route of the gateway.
type counting struct {
	h     http.Handler
	posts atomic.Int64 // POST …/traces (the ordinary save)
	slots atomic.Int64 // POST …/traces/uploads
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/traces"):
		c.posts.Add(1)
	case r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/traces/uploads"):
		c.slots.Add(1)
	}
	c.h.ServeHTTP(w, r)
}

// Above the threshold, Save uploads straight to storage through a signed
// URL and finalizes through the gateway; the trace then reads back like
// any other, a repeat of the save is a retry, and a gateway without
// direct uploads gets an ordinary save.
func TestDirectUploadThroughTheClient(t *testing.T) {
	t.Parallel()
	keyFile := filepath.Join(t.TempDir(), "upload.pem")
	key, err := objstore.LoadOrCreateSigningKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	const id = "gw@example.iam.gserviceaccount.com"
	emu := testutil.EmulatorWithOptions(t, emulator.Options{SigningKey: &key.PublicKey, SigningAccessID: id})
	signer, err := objstore.NewSigner(keyFile, id, emu.URL, emu.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	gcs := objstore.New(emu.Client, emu.Bucket)
	var cnt *counting
	g := serveGatewayWith(t, gcs, tracestore.Options{Now: emu.E.Now, Uploads: signer}, func(h http.Handler) http.Handler {
		cnt = &counting{h: h}
		return cnt
	})
	cl := g.newClient(t, client.WithDirectUploadAbove(2<<10))
	cv := newCanvas()
	big := sampleTrace(7)
	big.Input[0].Value = client.MustValue(map[string]any{"body": strings.Repeat("x y 12345 ", 5000)})
	big.Input = append(big.Input, client.InputVar{Name: "noise", Value: client.MustValue(noise(64 << 10))})
	saved, err := cl.Save(t.Context(), cv, big)
	if err != nil {
		t.Fatalf("Save: %v", err)
	}
	if !saved.Created || cnt.slots.Load() != 1 || cnt.posts.Load() != 0 {
		t.Errorf("Save = %+v with %d upload slots and %d posts, want created through one direct upload", saved, cnt.slots.Load(), cnt.posts.Load())
	}
	got, gen, err := cl.Get(t.Context(), cv, saved.ID)
	if err != nil || gen != saved.Generation || got.ID != saved.ID {
		t.Fatalf("Get = %v, %d, %v", got, gen, err)
	}
	c, _ := traces.ParseCanvasID(string(cv))
	tid, _ := traces.ParseTraceID(string(saved.ID))
	if _, err := g.DB.Get(t.Context(), c, tid); err != nil {
		t.Errorf("not indexed: %v", err)
	}
	again, err := cl.Save(t.Context(), cv, big)
	if err != nil || again.Created || again.Generation != saved.Generation {
		t.Errorf("repeat Save = %+v, %v: want the same generation, not created", again, err)
	}
	// A small trace goes the ordinary way.
	if _, err := cl.Save(t.Context(), cv, sampleTrace(8)); err != nil || cnt.posts.Load() != 1 {
		t.Errorf("small Save: %v, %d posts", err, cnt.posts.Load())
	}

	// A gateway without a signing key: the client falls back to POST.
	emu2 := testutil.Emulator(t)
	var cnt2 *counting
	g2 := serveGatewayWith(t, objstore.New(emu2.Client, emu2.Bucket), tracestore.Options{Now: emu2.E.Now}, func(h http.Handler) http.Handler {
		cnt2 = &counting{h: h}
		return cnt2
	})
	big2 := *big
	big2.ID = ""
	s2, err := g2.newClient(t, client.WithDirectUploadAbove(2<<10)).Save(t.Context(), cv, &big2)
	if err != nil || !s2.Created || cnt2.slots.Load() != 1 || cnt2.posts.Load() != 1 {
		t.Errorf("Save without direct uploads = %+v, %v (%d slots, %d posts), want one refused slot, then a POST", s2, err, cnt2.slots.Load(), cnt2.posts.Load())
	}
}

// noise is n pseudo-random bytes (incompressible, so the trace stays
// large once compressed).
func noise(n int) []byte {
	b := make([]byte, n)
	x := uint64(88172645463325252)
	for i := range b {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		b[i] = byte(x)
	}
	return b
}
