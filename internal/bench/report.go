package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything a run measured: the saves table of each emulator
// storage, the index reads, the background work and the targets. It
// renders as text (WriteText) and JSON (WriteJSON).
type Report struct {
	Mode    string         `json:"mode"` // "full", "quick"
	Host    string         `json:"host"`
	Started time.Time      `json:"started"`
	Seconds float64        `json:"seconds"`
	Method  string         `json:"method"`
	Stages  []Stage        `json:"stages"`
	Reads   *Reads         `json:"reads,omitempty"`
	GC      *GCResults     `json:"gc,omitempty"`
	Notify  *NotifyResults `json:"notify,omitempty"`
	Large   *LargeResults  `json:"large,omitempty"`
	Targets []TargetRow    `json:"targets"`
}

// Stage is the saves table of one emulator storage ("disk", "tmpfs", or
// "remote" for a gateway at Options.URL).
type Stage struct {
	Storage string `json:"storage"`
	Dir     string `json:"dir"`
	Cells   []Cell `json:"cells"`
}

// cell returns the stage's cell of size KiB at concurrency conc.
func (st Stage) cell(size, conc int) (Cell, bool) {
	for _, c := range st.Cells {
		if c.SizeKiB == size && c.Conc == conc {
			return c, true
		}
	}
	return Cell{}, false
}

// Cell is one row of a saves table: the three paths side by side (raw and
// naive are nil when not measured), and the gateway's and the emulator's
// cost during the gateway's run.
type Cell struct {
	SizeKiB int     `json:"size_kib"`
	Conc    int     `json:"concurrency"`
	Gateway Result  `json:"gateway"`
	Raw     *Result `json:"raw,omitempty"`
	Naive   *Result `json:"naive,omitempty"`
	GwCPU1k float64 `json:"gateway_cpu_seconds_per_1000,omitempty"`
	// RawCPU1k is the bench process's CPU per 1000 raw uploads: the
	// storage client's own cost of storing the same bytes.
	RawCPU1k  float64 `json:"raw_client_cpu_seconds_per_1000,omitempty"`
	GwPeakMiB float64 `json:"gateway_peak_rss_mib,omitempty"`
	EmuCPU1k  float64 `json:"emulator_cpu_seconds_per_1000,omitempty"`
}

// seededRows is the number of index rows the reads ran over.
func (r *Report) seededRows() int {
	if r.Reads == nil {
		return 0
	}
	return r.Reads.Rows
}

// WriteJSON writes the report as indented JSON and a newline.
func (r *Report) WriteJSON(w io.Writer) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// WriteText writes the report as the tables `tracegw bench` prints.
func (r *Report) WriteText(w io.Writer) error {
	ew := &errWriter{w: w}
	r.writeText(ew)
	return ew.err
}

// errWriter keeps the first write error, so rendering reads as prints.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return len(p), nil
	}
	_, e.err = e.w.Write(p)
	return len(p), nil
}

func (r *Report) writeText(w io.Writer) {
	fmt.Fprintf(w, "tracegw bench (%s) — %s — %s — %.0fs\n", r.Mode, r.Host, r.Started.Format(time.RFC3339), r.Seconds)
	fmt.Fprintf(w, "method: %s\n", r.Method)
	for _, st := range r.Stages {
		writeStage(w, st)
	}
	if rd := r.Reads; rd != nil {
		fmt.Fprintf(w, "\nIndex reads through HTTP, one request at a time (%d index rows seeded with COPY in %.1fs)\n", rd.Rows, rd.SeedTime)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "query\trequests\treq/s\tp50\tp95\tp99\t")
		for _, q := range rd.Queries {
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t\n", q.Label, q.Ops, q.PerSec, ms(q.P50), ms(q.P95), ms(q.P99))
			if q.FirstErr != "" {
				fmt.Fprintf(tw, "  errors: %d, first: %s\t\t\t\t\t\t\n", q.Errors, q.FirstErr)
			}
		}
		tw.Flush()
	}
	if l := r.Large; l != nil {
		fmt.Fprintf(w, "\nLarge traces (%d KiB document, %d KiB compressed, c=%d, emulator on tmpfs): gateway CPU per MiB saved\n", l.SizeKiB, l.StoredKiB, l.Conc)
		fmt.Fprintf(w, "  POST through the gateway: %.1f ms/MiB (%s/s, p50 %s)\n", l.PostCPUMiB, rate(&l.Post), ms(l.Post.P50))
		fmt.Fprintf(w, "  direct upload (signed URL, then finalize): %.1f ms/MiB (%s/s, p50 %s)\n", l.DirectCPUMiB, rate(&l.Direct), ms(l.Direct.P50))
		for _, x := range []*Result{&l.Post, &l.Direct} {
			if x.FirstErr != "" {
				fmt.Fprintf(w, "  first error: %s\n", x.FirstErr)
			}
		}
		if l.Err != "" {
			fmt.Fprintf(w, "  error: %s\n", l.Err)
		}
	}
	fmt.Fprintln(w, "\nBackground work")
	if g := r.GC; g != nil {
		fmt.Fprintf(w, "  GC renewals/s: %.0f (%d renewed, %d failed in %.2fs; one uncapped pass, 16 PATCHes in flight; production default caps at 500 PATCH/s)\n",
			g.RenewalsPerSec, g.Renewed, g.Failed, g.Seconds)
		fmt.Fprintf(w, "  saves 16 KiB c=16 without GC: %.0f/s p50 %s p99 %s; during default-rate GC passes (%d renewed meanwhile): %.0f/s p50 %s p99 %s\n",
			g.SavesWithout.PerSec, ms(g.SavesWithout.P50), ms(g.SavesWithout.P99), g.DuringRenewed,
			g.SavesDuring.PerSec, ms(g.SavesDuring.P50), ms(g.SavesDuring.P99))
		if g.Err != "" {
			fmt.Fprintf(w, "  GC error: %s\n", g.Err)
		}
	} else {
		fmt.Fprintln(w, "  GC renewals/s: n/a")
	}
	if n := r.Notify; n != nil {
		q := n.Queue
		fmt.Fprintf(w, "  notify deletions/s, in-process notify.Queue -> notify.Consumer -> index: %.0f (%d of %d OBJECT_DELETE notifications in %.2fs; bench CPU %.3f s/1k)\n",
			q.PerSec, q.Applied, q.Messages, q.Secs, q.CPU1k)
		e := n.Emulator
		if e.Applied > 0 || e.BareN > 0 {
			fmt.Fprintf(w, "  notify deletions/s, official Pub/Sub emulator -> notify.Consumer -> index: %.0f (%d of %d in %.2fs; publishing took %.2fs)\n",
				e.PerSec, e.Applied, e.Messages, e.Secs, e.PublishSecs)
			fmt.Fprintf(w, "  the same emulator delivering the same messages to a Receive that only acks: %.0f/s (%d messages)\n", e.BarePerSec, e.BareN)
		}
		if e.Err != "" {
			fmt.Fprintf(w, "  official Pub/Sub emulator: %s\n", e.Err)
		}
		fmt.Fprintf(w, "  index apply only (RemoveManyWithLayers, batches of 1000): %.0f deletions/s over %d; %d rows removed by the consumers\n", n.ApplyPerSec, n.ApplyN, n.RowsRemoved)
		fmt.Fprintf(w, "  consumer settings: %s\n", notifySettingsText)
		if n.Err != "" {
			fmt.Fprintf(w, "  notify error: %s\n", n.Err)
		}
	} else {
		fmt.Fprintln(w, "  notify deletions/s: n/a")
	}
	fmt.Fprintln(w, "\nTargets")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tmeasured\tgoal\tmet\t")
	for _, t := range r.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", t.Target, t.Measured, t.Goal, t.Met)
	}
	tw.Flush()
	fmt.Fprintln(w, strings.Repeat("-", 20))
}

// writeStage writes one saves table and the first error of each path.
func writeStage(w io.Writer, st Stage) {
	fmt.Fprintf(w, "\nSaves/s and latency, emulator storage on %s (%s)\n", st.Storage, st.Dir)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "size\tconc\tgateway/s\tp50\tp99\traw/s\tp50\tp99\tnaive/s\tp50\tp99\tgw/raw\tnaive/raw\tgw CPU s/1k\traw CPU s/1k\tgw/raw CPU\tgw peak RSS MiB\temu CPU s/1k\t")
	for _, c := range st.Cells {
		g := &c.Gateway
		fmt.Fprintf(tw, "%d KiB\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.3f\t%.3f\t%s\t%.0f\t%.3f\t\n",
			c.SizeKiB, c.Conc, rate(g), ms(g.P50), ms(g.P99),
			rate(c.Raw), p50(c.Raw), p99Of(c.Raw), rate(c.Naive), p50(c.Naive), p99Of(c.Naive),
			ratio(g, c.Raw), ratio(c.Naive, c.Raw), c.GwCPU1k, c.RawCPU1k, cpuRatio(c), c.GwPeakMiB, c.EmuCPU1k)
	}
	tw.Flush()
	for _, c := range st.Cells {
		for _, x := range []struct {
			name string
			l    *Result
		}{{"gateway", &c.Gateway}, {"raw", c.Raw}, {"naive", c.Naive}} {
			if x.l != nil && x.l.FirstErr != "" {
				fmt.Fprintf(w, "  %d KiB c=%d %s: %d errors, first: %s\n", c.SizeKiB, c.Conc, x.name, x.l.Errors, x.l.FirstErr)
			}
		}
	}
}

// ms renders a latency in milliseconds, "-" for none.
func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

// rate renders calls per second and the error count, "n/a" when the path
// was not measured.
func rate(l *Result) string {
	if l == nil {
		return "n/a"
	}
	s := fmt.Sprintf("%.0f", l.PerSec)
	if l.Errors > 0 {
		s += fmt.Sprintf(" (%d err)", l.Errors)
	}
	return s
}

// ratio renders a's rate over b's, "n/a" when either was not measured or b
// had none.
func ratio(a, b *Result) string {
	if a == nil || b == nil || b.PerSec == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a.PerSec/b.PerSec)
}

// cpuRatio renders the gateway's CPU per save over the raw path's per
// upload, "n/a" without the latter.
func cpuRatio(c Cell) string {
	if c.RawCPU1k <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", c.GwCPU1k/c.RawCPU1k)
}

func p50(l *Result) string {
	if l == nil {
		return "n/a"
	}
	return ms(l.P50)
}

func p99Of(l *Result) string {
	if l == nil {
		return "n/a"
	}
	return ms(l.P99)
}
