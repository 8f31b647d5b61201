package httpapi_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkInflightBudget measures the process's peak memory while many
// clients send 16 MiB saves at once, with the default in-flight budget
// (256 MiB) and with none: "slow" sends each body in 1 MiB pieces 20 ms
// apart (a slow network), "fast" all at once. The body is msgpack with one
// incompressible 16 MiB bin value, the worst case for every copy. Gateway,
// index client and emulator share this process, as in tracegw dev. Run it
// alone, one iteration per cell:
//
//	go test ./internal/httpapi -run '^$' -bench InflightBudget -benchtime 1x
//
// It reports the peak heap (objects, garbage included) and the peak live
// heap (as of each GC), sampled every millisecond, the peak RSS (VmHWM,
// reset before each cell), the bytes allocated per accepted save in units
// of the body (gateway and emulator together), and how many saves were
// accepted (201) and refused (503).
func BenchmarkInflightBudget(b *testing.B) {
	const size = 16 << 20
	body := bigTraceBody(b, size)
	for _, shape := range []struct {
		name    string
		clients int
		piece   int
		pause   time.Duration
	}{{"slow", 40, 1 << 20, 20 * time.Millisecond}, {"fast", 30, size, 0}} {
		for _, budget := range []int64{256 << 20, 1 << 40} {
			name := fmt.Sprintf("%s/clients=%d/budget=%dMiB", shape.name, shape.clients, budget>>20)
			if budget == 1<<40 {
				name = fmt.Sprintf("%s/clients=%d/budget=none", shape.name, shape.clients)
			}
			b.Run(name, func(b *testing.B) {
				url, _ := budgetGateway(b, size+4096, budget, 2*time.Second)
				var ok, busy, other atomic.Int64
				var allocs uint64
				peak := sampleHeap()
				resetRSSPeak()
				for b.Loop() {
					before := readMetric("/gc/heap/allocs:bytes")
					var wg sync.WaitGroup
					for range shape.clients {
						wg.Go(func() {
							switch postPaced(b, url+"/v1/canvases/"+canvas+"/traces", body, shape.piece, shape.pause) {
							case http.StatusCreated:
								ok.Add(1)
							case http.StatusServiceUnavailable:
								busy.Add(1)
							default:
								other.Add(1)
							}
						})
					}
					wg.Wait()
					allocs += readMetric("/gc/heap/allocs:bytes") - before
				}
				heap, live := peak()
				b.ReportMetric(float64(heap)/(1<<20), "peak-heap-MiB")
				b.ReportMetric(float64(live)/(1<<20), "peak-live-MiB")
				if rss := rssPeak(); rss > 0 {
					b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
				}
				if n := ok.Load(); n > 0 {
					b.ReportMetric(float64(allocs)/float64(n)/size, "alloc/body")
				}
				b.ReportMetric(float64(ok.Load())/float64(b.N), "201s")
				b.ReportMetric(float64(busy.Load())/float64(b.N), "503s")
				if other.Load() > 0 {
					b.Errorf("%d saves answered neither 201 nor 503", other.Load())
				}
			})
		}
	}
}

// bigTraceBody is a msgpack trace of about size bytes: one input whose
// value is random bytes (bin 32).
func bigTraceBody(b testing.TB, size int) []byte {
	payload := make([]byte, size-64)
	if _, err := rand.Read(payload); err != nil {
		b.Fatal(err)
	}
	doc := append([]byte("\x82\xa8rootTLID\x01\xa5input\x91\x92\xa1x\xc6"), byte(len(payload)>>24), byte(len(payload)>>16), byte(len(payload)>>8), byte(len(payload)))
	return append(doc, payload...)
}

// postPaced POSTs body with its Content-Length, in pieces of piece bytes
// pause apart, and returns the status.
func postPaced(b testing.TB, url string, body []byte, piece int, pause time.Duration) int {
	pr, pw := io.Pipe()
	go func() {
		for off := 0; off < len(body); off += piece {
			if off > 0 && pause > 0 {
				time.Sleep(pause) // a slow client, not synchronisation
			}
			if _, err := pw.Write(body[off:min(off+piece, len(body))]); err != nil {
				return // the server answered early (503) and closed
			}
		}
		pw.Close()
	}()
	req, err := http.NewRequestWithContext(context.Background(), "POST", url, pr)
	if err != nil {
		b.Fatal(err)
	}
	req.ContentLength = int64(len(body))
	req.Header.Set("Content-Type", "application/msgpack")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		pr.CloseWithError(err)
		b.Errorf("save: %v", err)
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	pr.CloseWithError(io.ErrClosedPipe)
	return resp.StatusCode
}

func readMetric(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// sampleHeap samples the heap every millisecond until the returned
// function is called, which returns the peaks of the bytes in heap objects
// (live ones and garbage not yet swept: what the process holds) and of the
// live heap as the last GC measured it (what the requests kept).
func sampleHeap() func() (objects, live uint64) {
	runtime.GC()
	var peakObjects, peakLive uint64
	done, stopped := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stopped)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/live:bytes"}}
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			metrics.Read(s)
			peakObjects = max(peakObjects, s[0].Value.Uint64())
			peakLive = max(peakLive, s[1].Value.Uint64())
			select {
			case <-done:
				return
			case <-tick.C:
			}
		}
	}()
	return func() (uint64, uint64) {
		close(done)
		<-stopped
		return peakObjects, peakLive
	}
}

// resetRSSPeak returns freed memory to the OS and resets VmHWM to the RSS
// that remains (Linux; elsewhere nothing happens), so each cell's peak is
// its own.
func resetRSSPeak() {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
}

// rssPeak is VmHWM in bytes, or 0 where /proc is missing.
func rssPeak() uint64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}
