package bench

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/tracegw/tracegw/client"
)

// LargeResults compare the two ways a large trace reaches storage: POST
// through the gateway (the body read, inflated, validated and uploaded by
// the gateway) and a direct upload (the executor PUTs to a signed URL, the
// gateway signs and then reads and validates the object once at
// finalize). Gateway CPU is per MiB of uncompressed document.
type LargeResults struct {
	SizeKiB      int     `json:"size_kib"`
	StoredKiB    int     `json:"stored_kib"` // compressed, as uploaded
	Conc         int     `json:"concurrency"`
	Post         Result  `json:"post"`
	Direct       Result  `json:"direct"`
	PostCPUMiB   float64 `json:"post_gateway_cpu_ms_per_mib"`
	DirectCPUMiB float64 `json:"direct_gateway_cpu_ms_per_mib"`
	Err          string  `json:"error,omitempty"`
}

// largeSizeKiB is the large trace's document size: its compressed form is
// over the client's direct-upload threshold (1 MiB).
const largeSizeKiB = 4096

// measureLarge saves large traces both ways through gateway gwURL (pid
// gwPid), one after the other.
func (b *run) measureLarge(ctx context.Context, gwURL string, gwPid int) *LargeResults {
	b.log("large traces: POST and direct upload")
	res := &LargeResults{SizeKiB: largeSizeKiB, Conc: largeConc}
	p, err := makePayload(rand.New(rand.NewPCG(b.o.Seed, 4096)), largeSizeKiB)
	if err != nil {
		res.Err = err.Error()
		return res
	}
	res.StoredKiB = len(p.stored) >> 10
	if int64(len(p.stored)) < client.DefaultDirectUploadAbove {
		res.Err = fmt.Sprintf("the large payload compresses to %d KiB, under the direct-upload threshold", res.StoredKiB)
	}
	mib := float64(largeSizeKiB) / 1024
	for _, direct := range []bool{false, true} {
		threshold := int64(0) // never direct
		if direct {
			threshold = client.DefaultDirectUploadAbove
		}
		cl := client.New(gwURL, b.token, client.WithDirectUploadAbove(threshold))
		t := &saveTargets{cl: cl, canvases: newCanvases()}
		cpu0, _ := readProc(gwPid)
		r := runLoad(ctx, largeConc, b.plan.large, t.gateway(p))
		cpu1, _ := readProc(gwPid)
		cl.Close()
		perMiB := 0.0
		if n := r.Ops + largeConc; r.Ops > 0 {
			perMiB = float64((cpu1.CPU - cpu0.CPU).Milliseconds()) / float64(n) / mib
		}
		if direct {
			res.Direct, res.DirectCPUMiB = r, perMiB
		} else {
			res.Post, res.PostCPUMiB = r, perMiB
		}
	}
	return res
}

// largeConc is the concurrency of the large-trace saves.
const largeConc = 4
