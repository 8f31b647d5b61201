package httpapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"strings"
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
