package bench

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// TestSeedRowsInKeyOrder: the seed is 1,000,000 traces emitted in the
// primary-key order COPY FREEZE appends fastest in, with IDs that grow
// with their timestamps.
func TestSeedRowsInKeyOrder(t *testing.T) {
	base := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	n, big := 0, 0
	var last seedRow
	seedRows(base, func(r seedRow) {
		if n > 0 {
			c := bytes.Compare(last.canvas[:], r.canvas[:])
			if c > 0 || c == 0 && (last.tlid > r.tlid || last.tlid == r.tlid && bytes.Compare(last.id[:], r.id[:]) >= 0) {
				t.Fatalf("row %d (%v) does not follow row %d (%v) in key order", n, r, n-1, last)
			}
		}
		if !r.id.Time().Equal(r.ts) {
			t.Fatalf("row %d: ID time %v, timestamp %v", n, r.id.Time(), r.ts)
		}
		if r.canvas == seedCanvas(0) && r.tlid <= seedBig {
			big++
		}
		last = r
		n++
	})
	if n != 1_000_000 || big != seedBig*seedBigN {
		t.Errorf("seeded %d rows, %d of the big toplevels; want 1000000 and %d", n, big, seedBig*seedBigN)
	}
}

// TestMakePayload: a payload is about its size, the same for a seed, and
// its stored form is the gzip of the document the client sends.
func TestMakePayload(t *testing.T) {
	p, err := makePayload(rand.New(rand.NewPCG(1, 7)), 16)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := makePayload(rand.New(rand.NewPCG(1, 7)), 16)
	if !bytes.Equal(p.value, again.value) {
		t.Errorf("two payloads of one seed differ")
	}
	if n := len(p.value); n < 16<<10-200 || n > 16<<10 {
		t.Errorf("16 KiB payload value is %d bytes", n)
	}
	zr, err := gzip.NewReader(bytes.NewReader(p.stored))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	tr, err := traces.DecodeTrace(doc, false, traces.Limits{})
	if err != nil || len(tr.Input) != 1 || !bytes.Equal(tr.Input[0].Value, p.value) {
		t.Errorf("stored object decodes to %+v, %v; want the payload's input", tr, err)
	}
}
