package traces

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"syscall"
	"testing"
	"time"
)

// cpuTime is this process's user+system CPU time: on a shared machine it
// is steadier than the wall time per op.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// loopCPU runs b.Loop over f and reports CPU time per op as cpu-ns/op.
func loopCPU(b *testing.B, f func()) {
	c0, n := cpuTime(), 0
	for b.Loop() {
		f()
		n++
	}
	b.ReportMetric(float64(cpuTime()-c0)/float64(n), "cpu-ns/op")
}

// BenchmarkSaveBody is a save's CPU between reading its body and uploading
// the object, both ways: path=reencode decodes an uncompressed body,
// encodes the document and compresses and hashes it (Store); path=asSent
// inflates the gzip body the Go client sends, decodes it, encodes the
// canonical document to compare, hashes it and keeps the client's gzip
// (StoreCompressed). Compare with benchstat -col /path.
func BenchmarkSaveBody(b *testing.B) {
	for _, size := range []int{2 << 10, 16 << 10, 256 << 10} {
		tr := benchTrace(b, size)
		doc := AppendTraceMsgpack(nil, tr)
		var zb bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&zb, gzip.BestSpeed) // the client's
		zw.Write(doc)
		zw.Close()
		gz := zb.Bytes()
		lim := DefaultLimits
		buf := make([]byte, 0, len(doc)+1024)
		b.Run(fmt.Sprintf("size=%dKiB/path=reencode", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			loopCPU(b, func() {
				t, err := DecodeTrace(doc, false, lim)
				if err != nil {
					b.Fatal(err)
				}
				buf = AppendTraceMsgpack(buf[:0], t)
				if _, err := Store(buf); err != nil {
					b.Fatal(err)
				}
			})
		})
		b.Run(fmt.Sprintf("size=%dKiB/path=asSent", size>>10), func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			loopCPU(b, func() {
				d, err := Inflate(gz, lim.MaxBody, "body", func(int64) error { return nil })
				if err != nil {
					b.Fatal(err)
				}
				t, err := DecodeTrace(d, false, lim)
				if err != nil {
					b.Fatal(err)
				}
				buf = AppendTraceMsgpack(buf[:0], t)
				if !bytes.Equal(buf, d) {
					b.Fatal("not canonical")
				}
				_ = StoreCompressed(d, gz)
			})
		})
	}
}
