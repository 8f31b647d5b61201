package objstore_test

import (
	"bytes"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/objstore"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/testutil"
)

// The adapter translates the storage client's errors once, into the
// sentinels every other package matches on.
func TestErrorTranslation(t *testing.T) {
	t.Parallel()
	emu := testutil.Emulator(t)
	g := objstore.New(emu.Client, emu.Bucket)
	g.Attempts = 2
	ctx := t.Context()
	now := emu.E.Now().Truncate(time.Second)
	o := traces.NewObject{ContentType: "application/msgpack", CustomTime: now, Metadata: map[string]string{"k": "v"}}

	info, err := g.Create(ctx, "a", []byte("one"), o)
	if err != nil {
		t.Fatal(err)
	}
	if info.Generation == 0 || !info.CustomTime.Equal(now) || info.Metadata["k"] != "v" {
		t.Errorf("Create = %+v", info)
	}
	body, got, err := g.Open(ctx, "a")
	if err != nil || !bytes.Equal(body, []byte("one")) || got.Generation != info.Generation {
		t.Errorf("Open = %q, %+v, %v", body, got, err)
	}

	check := func(name string, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Errorf("%s: %v, want %v", name, err, want)
		}
	}
	_, err = g.Create(ctx, "a", []byte("two"), o)
	check("create over an existing object", err, traces.ErrPreconditionFailed)
	_, err = g.Replace(ctx, "a", []byte("two"), o, info.Generation+1)
	check("replace of another generation", err, traces.ErrPreconditionFailed)
	_, _, err = g.Open(ctx, "missing")
	check("open a missing object", err, traces.ErrNotFound)
	_, err = g.Stat(ctx, "missing")
	check("stat a missing object", err, traces.ErrNotFound)
	_, err = g.SetCustomTime(ctx, "a", now, info.Metageneration+5)
	check("set custom time at another metageneration", err, traces.ErrPreconditionFailed)

	if _, err := g.SetTemporaryHold(ctx, "a", true, time.Time{}); err != nil {
		t.Fatal(err)
	}
	check("delete a held object", g.Delete(ctx, "a", 0), traces.ErrHeld)
	_, err = g.Replace(ctx, "a", []byte("two"), o, info.Generation)
	check("overwrite a held object", err, traces.ErrHeld)
	if _, err := g.SetTemporaryHold(ctx, "a", false, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if st, err := g.Stat(ctx, "a"); err != nil || st.TemporaryHold || !st.CustomTime.Equal(now.Add(time.Hour)) {
		t.Errorf("after release: %+v, %v; want no hold and customTime moved in the same PATCH", st, err)
	}

	// Every attempt (Attempts = 2) answered 503.
	emu.E.InjectFaults("any", 2, 503)
	_, err = g.Stat(ctx, "a")
	check("stat while GCS answers 503", err, traces.ErrUnavailable)
	emu.E.InjectFaults("any", 2, 503)
	_, err = g.Create(ctx, "b", []byte("x"), o)
	check("create while GCS answers 503", err, traces.ErrUnavailable)
	// One 503, then success: the adapter retries.
	emu.E.InjectFaults("any", 1, 503)
	if _, err := g.Create(ctx, "c", []byte("x"), o); err != nil {
		t.Errorf("create after one 503: %v", err)
	}
	if err := g.Delete(ctx, "c", 0); err != nil {
		t.Fatal(err)
	}

	if err := g.Delete(ctx, "a", 0); err != nil {
		t.Fatal(err)
	}
	check("delete a missing object", g.Delete(ctx, "a", 0), traces.ErrNotFound)
	n := 0
	for _, err := range g.Objects(ctx, "") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 0 {
		t.Errorf("listing after deletes: %d objects", n)
	}
}

// With XML uploads, Create is one XML API PUT: create-only, with
// customTime, content type and encoding and metadata as the storage
// client would set them, and the generation from the answer.
func TestCreateXML(t *testing.T) {
	t.Parallel()
	emu := testutil.Emulator(t)
	g := objstore.New(emu.Client, emu.Bucket)
	g.UseXMLUploads(http.DefaultClient, emu.URL)
	ctx := t.Context()
	now := emu.E.Now().Truncate(time.Second)
	o := traces.NewObject{ContentType: "application/msgpack", ContentEncoding: "gzip", CustomTime: now,
		Metadata: map[string]string{"tracegw-sha256": "ab12"}}
	st0, err := traces.Store([]byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	info, err := g.Create(ctx, "c/traces/xy", st0.Body, o)
	if err != nil {
		t.Fatal(err)
	}
	st, err := g.Stat(ctx, "c/traces/xy")
	if err != nil {
		t.Fatal(err)
	}
	if info.Generation == 0 || info.Generation != st.Generation || info.Metageneration != st.Metageneration {
		t.Errorf("Create = generation %d metageneration %d, Stat = %d %d", info.Generation, info.Metageneration, st.Generation, st.Metageneration)
	}
	if !st.CustomTime.Equal(now) || st.ContentType != o.ContentType || st.ContentEncoding != "gzip" ||
		st.Metadata["tracegw-sha256"] != "ab12" || st.Size != int64(len(st0.Body)) {
		t.Errorf("stored %+v, want customTime %s, type, encoding, metadata and size as sent", st, now)
	}
	if info.Created.IsZero() || !info.CustomTime.Equal(now) {
		t.Errorf("Create info %+v: want created and customTime", info)
	}
	if _, err := g.Create(ctx, "c/traces/xy", []byte("two"), o); !errors.Is(err, traces.ErrPreconditionFailed) {
		t.Errorf("second create: %v, want ErrPreconditionFailed", err)
	}
	stored, sinfo, err := g.OpenStored(ctx, "c/traces/xy")
	if err != nil || !bytes.Equal(stored, st0.Body) || sinfo.Generation != info.Generation || sinfo.ContentEncoding != "gzip" {
		t.Errorf("OpenStored = %d bytes, %+v, %v; want the gzip as stored and its generation", len(stored), sinfo, err)
	}
	if _, _, err := g.OpenStored(ctx, "c/traces/missing"); !errors.Is(err, traces.ErrNotFound) {
		t.Errorf("OpenStored of a missing object: %v, want ErrNotFound", err)
	}
	raw, _, err := g.Open(ctx, "c/traces/xy")
	body, _ := traces.Unstore(raw)
	if err != nil || string(body) != "one" {
		t.Errorf("after the refused create: %q, %v", body, err)
	}
	g2 := objstore.New(emu.Client, emu.Bucket+"-missing")
	g2.UseXMLUploads(http.DefaultClient, emu.URL)
	if _, err := g2.Create(ctx, "k", []byte("x"), o); err == nil {
		t.Errorf("create in a missing bucket succeeded")
	}
}
