package traces

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"testing"
)

func gzipOf(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// Inflate reads one gzip member within the limit, sizes its buffer from
// the trailer without trusting it past 64 times the compressed size, and
// reserves every byte it allocates.
func TestInflate(t *testing.T) {
	var sb strings.Builder // 60 KB of numbers: compresses about 2x, as traces do
	for x := uint32(1); sb.Len() < 60_000; x = x*1664525 + 1013904223 {
		sb.WriteString(strconv.Itoa(int(x % 100_000)))
		sb.WriteByte(' ')
	}
	doc := []byte(sb.String())
	gz := gzipOf(t, doc)
	var reserved int64
	reserve := func(n int64) error { reserved += n; return nil }
	got, err := Inflate(gz, 1<<20, "body", reserve)
	if err != nil || !bytes.Equal(got, doc) {
		t.Fatalf("Inflate = %d bytes, %v; want the document", len(got), err)
	}
	if reserved != int64(cap(got)) || cap(got) != len(doc)+1 {
		t.Errorf("reserved %d, buffer %d for %d bytes: want one buffer of the trailer's size plus one, all reserved", reserved, cap(got), len(doc))
	}

	// A trailer that claims 4 GiB: the first buffer is at most 64x the
	// body, later ones follow what really inflates, and the trailer check
	// refuses the stream.
	lying := bytes.Clone(gz)
	binary.LittleEndian.PutUint32(lying[len(lying)-4:], 1<<32-1)
	reserved = 0
	if _, err := Inflate(lying, 1<<30, "body", reserve); !errors.Is(err, ErrInvalid) {
		t.Errorf("lying trailer: %v, want ErrInvalid", err)
	}
	if limit := 64*int64(len(gz)) + 4*int64(len(doc)); reserved > limit {
		t.Errorf("lying trailer reserved %d bytes for a %d-byte body inflating to %d", reserved, len(gz), len(doc))
	}

	// Over the limit: TooLarge naming the field, having reserved at most
	// the limit and a byte.
	reserved = 0
	var fe *FieldError
	if _, err := Inflate(gz, 1000, "body", reserve); !errors.As(err, &fe) || fe.Limit != 1000 || fe.Field != "body" {
		t.Errorf("over the limit: %v, want TooLarge(body, 1000)", err)
	}
	if reserved > 1001+4<<10 {
		t.Errorf("over the limit reserved %d bytes", reserved)
	}

	// A refused reservation is returned as it is.
	busy := errors.New("busy")
	if _, err := Inflate(gz, 1<<20, "body", func(int64) error { return busy }); !errors.Is(err, busy) {
		t.Errorf("refused reservation: %v, want it returned", err)
	}
}
