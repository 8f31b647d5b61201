package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/emulator"
	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
	"github.com/tracegw/tracegw/testutil"
)

// newUploadGateway is newGateway with direct uploads on: the gateway signs
// upload URLs with a key the emulator checks them with.
func newUploadGateway(t *testing.T) *gateway {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "upload.pem")
	key, err := objstore.LoadOrCreateSigningKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	const id = "gw@example.iam.gserviceaccount.com"
	emu := testutil.EmulatorWithOptions(t, emulator.Options{SigningKey: &key.PublicKey, SigningAccessID: id})
	db, err := index.Open(t.Context(), testutil.PG(t), index.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	signer, err := objstore.NewSigner(keyFile, id, emu.URL, emu.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	gcs := objstore.New(emu.Client, emu.Bucket)
	gcs.UseXMLUploads(http.DefaultClient, emu.URL)
	lim := traces.Limits{MaxBody: 1 << 20}
	svc := tracestore.New(gcs, db, tracestore.Options{Now: emu.E.Now, Uploads: signer, Limits: lim})
	api := httpapi.New(httpapi.Options{Service: svc, Limits: lim,
		Logger: slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))})
	hs := serveChecked(t, api.Handler())
	return &gateway{URL: hs.URL, DB: db, GCS: gcs, Client: emu.Client, Bucket: emu.Bucket, Emu: emu}
}

type slotResp struct {
	TraceID  string            `json:"traceID"`
	Method   string            `json:"method"`
	URL      string            `json:"url"`
	Headers  map[string]string `json:"headers"`
	Expires  string            `json:"expires"`
	Finalize string            `json:"finalize"`
}

func hashOf(doc []byte) string {
	sum := sha256.Sum256(doc)
	return hex.EncodeToString(sum[:])
}

func slot(t *testing.T, g *gateway, id traces.TraceID, sha string) slotResp {
	t.Helper()
	status, _, b := call(t, "POST", tracesURL(g, canvas)+"/uploads", "application/json",
		[]byte(`{"traceID":"`+id.String()+`","sha256":"`+sha+`"}`))
	if status != http.StatusCreated {
		t.Fatalf("upload slot: %d %s", status, b)
	}
	var s slotResp
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// upload PUTs body to the slot's URL with its headers.
func upload(t *testing.T, s slotResp, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), s.Method, s.URL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range s.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func finalize(t *testing.T, g *gateway, s slotResp, sha string) (int, []byte) {
	t.Helper()
	status, _, b := call(t, "POST", g.URL+s.Finalize, "application/json", []byte(`{"sha256":"`+sha+`"}`))
	return status, b
}

// A direct upload lands at the trace's final key, created only if absent
// and with the gateway's customTime from its signed headers; finalize
// validates it as a save would and indexes it; the answers to repeats and
// to other documents under the ID are a save's.
func TestDirectUpload(t *testing.T) {
	t.Parallel()
	g := newUploadGateway(t)
	c, _ := traces.ParseCanvasID(canvas)
	id := traces.NewTraceID(g.Emu.E.Now())
	doc := canonicalDoc(id, 7, strings.Repeat("large ", 2000))
	sha := hashOf(doc)
	s := slot(t, g, id, sha)
	if s.Method != "PUT" || s.Headers["x-goog-if-generation-match"] != "0" || s.Headers["x-goog-custom-time"] == "" {
		t.Fatalf("slot %+v: want a PUT with the create-only precondition and customTime", s)
	}
	if status, _ := finalize(t, g, s, sha); status != http.StatusNotFound {
		t.Errorf("finalize before the upload: %d, want 404", status)
	}
	body := gz(t, doc, gzip.BestSpeed)
	if status, b := upload(t, s, body); status != http.StatusOK {
		t.Fatalf("upload: %d %s", status, b)
	}
	status, b := finalize(t, g, s, sha)
	if status != http.StatusCreated {
		t.Fatalf("finalize: %d %s", status, b)
	}
	info, err := g.GCS.Stat(t.Context(), traces.TraceKey(c, id))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := time.Parse(time.RFC3339, s.Headers["x-goog-custom-time"])
	if !info.CustomTime.Equal(want) || info.Size != int64(len(body)) {
		t.Errorf("object customTime %s size %d, want %s and %d", info.CustomTime, info.Size, want, len(body))
	}
	if status, _, b := call(t, "GET", tracesURL(g, canvas)+"/"+id.String(), "", nil); status != http.StatusOK {
		t.Errorf("read the uploaded trace: %d %s", status, b)
	}
	if status, _, b := call(t, "GET", g.URL+"/v1/canvases/"+canvas+"/toplevels/7/traces", "", nil); status != http.StatusOK || !strings.Contains(string(b), id.String()) {
		t.Errorf("list of toplevel 7: %d %s, want the uploaded trace", status, b)
	}
	// Repeats: finalize again, the PUT again (412, nothing changes), a
	// save of the same document: all say "already there".
	if status, b := finalize(t, g, s, sha); status != http.StatusOK {
		t.Errorf("second finalize: %d %s, want 200", status, b)
	}
	if status, _ := upload(t, s, body); status != http.StatusPreconditionFailed {
		t.Errorf("second PUT: %d, want 412", status)
	}
	if status, _, b := call(t, "POST", tracesURL(g, canvas), "application/msgpack", doc); status != http.StatusOK {
		t.Errorf("POST of the same document: %d %s, want 200", status, b)
	}
	// Another document under the same ID: its upload is refused by the
	// precondition, and its finalize is a conflict.
	other := canonicalDoc(id, 7, "other")
	s2 := slot(t, g, id, hashOf(other))
	if status, _ := upload(t, s2, gz(t, other, 1)); status != http.StatusPreconditionFailed {
		t.Errorf("PUT of another document: %d, want 412", status)
	}
	if status, b := finalize(t, g, s2, hashOf(other)); status != http.StatusConflict {
		t.Errorf("finalize of another document: %d %s, want 409", status, b)
	}
}

// An upload that is not what a save would store is refused at finalize
// and deleted, so its ID is free again; nothing is indexed. A slot's
// headers cannot be changed, and an expired slot uploads nothing.
func TestDirectUploadRefused(t *testing.T) {
	t.Parallel()
	g := newUploadGateway(t)
	c, _ := traces.ParseCanvasID(canvas)
	now := g.Emu.E.Now()
	for _, tc := range []struct {
		name   string
		doc    func(id traces.TraceID) []byte
		sha    func(doc []byte) string
		status int
		field  string
	}{
		{"hash of another document", func(id traces.TraceID) []byte { return canonicalDoc(id, 1, "a") },
			func([]byte) string { return hashOf([]byte("something else")) }, http.StatusBadRequest, "sha256"},
		{"not canonical (no timestamp)", func(id traces.TraceID) []byte {
			return traces.AppendTraceMsgpack(nil, &traces.Trace{ID: id, RootTLID: 1, TLIDs: []traces.TLID{1}})
		}, hashOf, http.StatusBadRequest, "body"},
		{"another trace's ID inside", func(traces.TraceID) []byte { return canonicalDoc(traces.NewTraceID(now.Add(-time.Second)), 1, "a") },
			hashOf, http.StatusBadRequest, "traceID"},
		{"not a trace", func(traces.TraceID) []byte { return []byte{0x81, 0xa1, 'x', 0x01} }, hashOf, http.StatusBadRequest, "x"},
		{"inflates past the body limit", func(id traces.TraceID) []byte { return canonicalDoc(id, 1, strings.Repeat("z", 2<<20)) },
			hashOf, http.StatusRequestEntityTooLarge, "body"},
	} {
		id := traces.NewTraceID(now)
		doc := tc.doc(id)
		sha := tc.sha(doc)
		s := slot(t, g, id, sha)
		if status, b := upload(t, s, gz(t, doc, 9)); status != http.StatusOK {
			t.Fatalf("%s: upload: %d %s", tc.name, status, b)
		}
		status, b := finalize(t, g, s, sha)
		if status != tc.status {
			t.Errorf("%s: finalize %d %s, want %d", tc.name, status, b, tc.status)
			continue
		}
		if _, field := errorOf(t, b); field != tc.field {
			t.Errorf("%s: field %q, want %q", tc.name, field, tc.field)
		}
		if _, err := g.GCS.Stat(t.Context(), traces.TraceKey(c, id)); err == nil {
			t.Errorf("%s: the refused object is still there", tc.name)
		}
		if _, err := g.DB.Get(t.Context(), c, id); err == nil {
			t.Errorf("%s: the refused trace was indexed", tc.name)
		}
	}

	id := traces.NewTraceID(now)
	doc := canonicalDoc(id, 1, "a")
	s := slot(t, g, id, hashOf(doc))
	s.Headers["x-goog-custom-time"] = now.Add(-30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	if status, _ := upload(t, s, gz(t, doc, 1)); status != http.StatusForbidden {
		t.Errorf("upload with a changed customTime: %d, want 403", status)
	}
	s = slot(t, g, id, hashOf(doc))
	if _, err := g.Emu.E.Advance(t.Context(), tracestore.UploadTTL+time.Minute); err != nil {
		t.Fatal(err)
	}
	if status, _ := upload(t, s, gz(t, doc, 1)); status != http.StatusBadRequest {
		t.Errorf("upload after the slot expired: %d, want 400", status)
	}
	for _, body := range []string{`{"traceID":"x","sha256":"` + hashOf(doc) + `"}`, `{"traceID":"` + id.String() + `","sha256":"ABC"}`, `{"sha256":"` + hashOf(doc) + `"}`} {
		if status, _, b := call(t, "POST", tracesURL(g, canvas)+"/uploads", "application/json", []byte(body)); status != http.StatusBadRequest {
			t.Errorf("slot %s: %d %s, want 400", body, status, b)
		}
	}
}

// Without a signing key, the slot route says direct uploads are off (404),
// and clients save with POST.
func TestDirectUploadOff(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	id := traces.NewTraceID(time.Now())
	status, _, b := call(t, "POST", tracesURL(g, canvas)+"/uploads", "application/json",
		[]byte(`{"traceID":"`+id.String()+`","sha256":"`+strings.Repeat("a", 64)+`"}`))
	if status != http.StatusNotFound {
		t.Errorf("slot without a signer: %d %s, want 404", status, b)
	}
}
