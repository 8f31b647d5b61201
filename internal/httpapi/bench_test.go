package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// traceBody is a JSON trace of about size bytes.
func traceBody(root int, size int) []byte {
	pad := strings.Repeat("x", max(size-120, 0))
	return fmt.Appendf(nil, `{"rootTLID":"%d","tlids":["%d","7"],"input":[["request",{"body":"%s"}]]}`, root, root+1, pad)
}

// BenchmarkSave saves traces over HTTP into the emulator and PostgreSQL,
// with GOMAXPROCS*8 concurrent clients.
func BenchmarkSave(b *testing.B) {
	for _, size := range []int{2 << 10, 16 << 10} {
		b.Run(fmt.Sprintf("bytes=%d", size), func(b *testing.B) {
			g := newGateway(b)
			body := traceBody(1, size)
			url := tracesURL(g, canvas)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.SetParallelism(8)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := http.Post(url, "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusCreated {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// BenchmarkList lists the latest 10 of a toplevel with 1,000 traces, and
// the batch form for 200 toplevels, over HTTP.
func BenchmarkList(b *testing.B) {
	g := newGateway(b)
	c, _ := traces.ParseCanvasID(canvas)
	now := time.Now()
	var tlids []traces.TLID
	for i := range 1000 {
		r := traces.Record{Canvas: c, ID: traces.NewTraceID(now.Add(time.Duration(i) * time.Millisecond)),
			RootTLID: traces.TLID(i % 200), Timestamp: now, Generation: 1, CustomTime: now}
		r.TLIDs = []traces.TLID{r.RootTLID, 1000}
		if _, err := g.DB.PutTrace(b.Context(), r, r.CustomTime); err != nil {
			b.Fatal(err)
		}
	}
	for i := range 200 {
		tlids = append(tlids, traces.TLID(i))
	}
	b.Run("latest10", func(b *testing.B) {
		url := g.URL + "/v1/canvases/" + canvas + "/toplevels/1000/traces?limit=10"
		b.ReportAllocs()
		for b.Loop() {
			resp, err := http.Get(url)
			if err != nil || resp.StatusCode != 200 {
				b.Fatal(err, resp)
			}
			resp.Body.Close()
		}
	})
	b.Run("batch200", func(b *testing.B) {
		body := []byte(`{"tlids":[` + joinTLIDs(tlids) + `],"limit":10}`)
		url := g.URL + "/v1/canvases/" + canvas + "/recent-traces"
		b.ReportAllocs()
		for b.Loop() {
			resp, err := http.Post(url, "application/json", bytes.NewReader(body))
			if err != nil || resp.StatusCode != 200 {
				b.Fatal(err, resp)
			}
			resp.Body.Close()
		}
	})
}

func joinTLIDs(ts []traces.TLID) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = `"` + t.String() + `"`
	}
	return strings.Join(s, ",")
}

// BenchmarkSaveWide saves the widest traces the limits allow over HTTP
// (JSON, into the emulator and PostgreSQL): 10,000 tlids; 100,000 function
// results of one toplevel, of 10,000, and of 100,000 toplevels (each
// result's tlid is a toplevel the trace touches, so the last one is over
// the 10,000-tlid limit and answered 413). conc is how many such saves run
// at once, each of other toplevels; worst-ms is the slowest save seen.
func BenchmarkSaveWide(b *testing.B) {
	tlids := func(first, n int) string {
		var sb strings.Builder
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `"%d"`, first+i)
		}
		return sb.String()
	}
	// results are n function results spread over the toplevels first to
	// first+toplevels-1.
	results := func(first, n, toplevels int) string {
		var sb strings.Builder
		for i := range n {
			if i > 0 {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, `{"tlid":"%d","exprID":"%d","fnName":"f","argHash":"h","value":%d}`, first+i%toplevels, i, i)
		}
		return sb.String()
	}
	for _, shape := range []struct {
		name string
		body func(first int) string
	}{
		{"tlids=10000", func(first int) string {
			return `{"rootTLID":"` + strconv.Itoa(first) + `","tlids":[` + tlids(first, 10_000) + `]}`
		}},
		{"results=100000/toplevels=1", func(first int) string {
			return `{"rootTLID":"` + strconv.Itoa(first) + `","functionResults":[` + results(first, 100_000, 1) + `]}`
		}},
		{"results=100000/toplevels=10000", func(first int) string {
			return `{"rootTLID":"` + strconv.Itoa(first) + `","functionResults":[` + results(first, 100_000, 10_000) + `]}`
		}},
		{"results=100000/toplevels=100000", func(first int) string { // over the tlids limit since it counts results' tlids
			return `{"rootTLID":"` + strconv.Itoa(first) + `","functionResults":[` + results(first, 100_000, 100_000) + `]}`
		}},
	} {
		for _, conc := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/conc=%d", shape.name, conc), func(b *testing.B) {
				url, _ := budgetGateway(b, 16<<20, 0, 0)
				bodies := make([][]byte, conc)
				for i := range bodies {
					bodies[i] = []byte(shape.body(1 + i*1_000_000))
				}
				var worst time.Duration
				var mu sync.Mutex
				for b.Loop() {
					var wg sync.WaitGroup
					for _, body := range bodies {
						wg.Go(func() {
							start := time.Now()
							status, _, resp := call(b, "POST", url+"/v1/canvases/"+canvas+"/traces", "application/json", body)
							d := time.Since(start)
							if status != http.StatusCreated && status != http.StatusRequestEntityTooLarge {
								b.Errorf("save: %d %.300s", status, resp)
							}
							mu.Lock()
							worst = max(worst, d)
							mu.Unlock()
						})
					}
					wg.Wait()
				}
				b.ReportMetric(float64(len(bodies[0]))/(1<<20), "body-MiB")
				b.ReportMetric(worst.Seconds()*1000, "worst-ms")
			})
		}
	}
}
