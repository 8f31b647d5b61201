package emulator

import (
	"bytes"
	"fmt"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"
)

// BenchmarkUpload measures 16 KiB uploads through the real storage client
// over loopback HTTP into buckets already holding N objects: throughput
// must stay flat as the bucket grows (fake-gcs-server's memory backend
// drops to ~31 uploads/s at 14k objects).
func BenchmarkUpload(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("objects=%d", n), func(b *testing.B) {
			e, err := New(b.Context(), Options{Dir: benchDir(b)})
			if err != nil {
				b.Fatalf("new: %v", err)
			}
			defer e.Close()
			if err := e.CreateBucket(b.Context(), "bench"); err != nil {
				b.Fatalf("create bucket: %v", err)
			}
			seed(b, e, "bench", n)
			srv := httptest.NewServer(e.Handler())
			defer srv.Close()
			c, err := storage.NewClient(b.Context(), option.WithEndpoint(srv.URL+"/storage/v1/"),
				option.WithoutAuthentication(), storage.WithJSONReads())
			if err != nil {
				b.Fatalf("client: %v", err)
			}
			defer c.Close()
			data := bytes.Repeat([]byte("x"), 16<<10)
			ct := time.Now().Truncate(time.Second)
			i := 0
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				w := c.Bucket("bench").Object(fmt.Sprintf("new/%08d", i)).If(storage.Conditions{DoesNotExist: true}).NewWriter(b.Context())
				w.ChunkSize = 0
				w.CustomTime = ct
				if _, err := w.Write(data); err != nil {
					b.Fatalf("write: %v", err)
				}
				if err := w.Close(); err != nil {
					b.Fatalf("close: %v", err)
				}
				i++
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "uploads/s")
		})
	}
}

// seed writes n objects straight into the fake's filesystem backend and
// adopts them, which leaves the same state uploads would, in a fraction of
// the time.
func seed(b *testing.B, e *Emulator, bucket string, n int) {
	b.Helper()
	data := bytes.Repeat([]byte("s"), 16<<10)
	for i := range n {
		err := e.fake.CreateObjectStreaming(fakestorage.Object{
			ObjectAttrs: fakestorage.ObjectAttrs{BucketName: bucket, Name: fmt.Sprintf("seed/%02d/%06d", i%100, i)},
			Content:     data,
		}.StreamingObject())
		if err != nil {
			b.Fatalf("seed: %v", err)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if err := e.reconcile(b.Context()); err != nil {
		b.Fatalf("reconcile: %v", err)
	}
	if err := e.compactLocked(); err != nil {
		b.Fatalf("compact: %v", err)
	}
}

var benchSizes = []int{0, 10000}

func benchDir(b *testing.B) string {
	if d := os.Getenv("EMULATOR_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}
