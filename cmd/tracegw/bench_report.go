package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// targetRow is one of issue 9's targets next to what this run measured.
type targetRow struct {
	Target   string `json:"target"`
	Measured string `json:"measured"`
	Goal     string `json:"goal"`
	Met      string `json:"met"` // "yes", "NO" or "n/a"
}

func yesNo(ok bool) string {
	if ok {
		return "yes"
	}
	return "NO"
}

func targets(r *benchReport) []targetRow {
	var out []targetRow
	na := func(target, goal string) { out = append(out, targetRow{target, "n/a", goal, "n/a"}) }
	maxRSS := 0.0
	for _, st := range r.Stages {
		for _, c := range st.Cells {
			if c.SizeKiB == 16 && c.Conc == 64 {
				t := "gateway saves/s vs raw upload, 16 KiB, c=64, emulator on " + st.Storage
				if c.Raw == nil || c.Raw.PerSec == 0 {
					na(t, ">= 0.90x")
					continue
				}
				ratio := c.Gateway.PerSec / c.Raw.PerSec
				out = append(out, targetRow{t, fmt.Sprintf("%.2fx (%.0f vs %.0f/s)", ratio, c.Gateway.PerSec, c.Raw.PerSec), ">= 0.90x", yesNo(ratio >= 0.9)})
			}
			if c.SizeKiB == 256 && c.Conc == 64 && c.GwPeakMiB > maxRSS {
				maxRSS = c.GwPeakMiB
			}
		}
	}
	if rd := r.Reads; rd != nil {
		out = append(out,
			targetRow{fmt.Sprintf("HTTP latest-10 p99, toplevel with 10,000 traces, %d rows", rd.Rows), ms(rd.LatestBig.P99), "<= 1 ms", yesNo(rd.LatestBig.Ops > 0 && rd.LatestBig.P99 <= time.Millisecond)},
			targetRow{"HTTP latest-10 p99, toplevel with 25 traces", ms(rd.LatestAll.P99), "<= 1 ms", yesNo(rd.LatestAll.Ops > 0 && rd.LatestAll.P99 <= time.Millisecond)},
			targetRow{"HTTP batch of 200 toplevels p99", ms(rd.Batch200.P99), "<= 6 ms", yesNo(rd.Batch200.Ops > 0 && rd.Batch200.P99 <= 6*time.Millisecond)})
	} else {
		na("HTTP latest-10 p99 at 1M rows", "<= 1 ms")
		na("HTTP batch of 200 toplevels p99", "<= 6 ms")
	}
	if g := r.GC; g != nil && g.SavesWithout.Ops > 0 {
		out = append(out, targetRow{"saves p99 during GC / without (16 KiB, c=16, disk)",
			fmt.Sprintf("%.2fx (%s vs %s)", g.P99Ratio, ms(g.SavesDuring.P99), ms(g.SavesWithout.P99)), "<= 1.20x", yesNo(g.P99Ratio <= 1.2)})
	} else {
		na("saves p99 during GC / without", "<= 1.20x")
	}
	if n := r.Notify; n != nil && n.Applied > 0 {
		m := fmt.Sprintf("%.0f", n.PerSec)
		if n.Applied < int64(n.Messages) {
			m += fmt.Sprintf(" (%d/%d in %.0fs)", n.Applied, n.Messages, n.ConsumeSecs)
		}
		out = append(out, targetRow{"notify deletions/s (pstest -> consumer -> index)", m, ">= 20,000", yesNo(n.PerSec >= 20_000)})
	} else {
		na("notify deletions/s", ">= 20,000")
	}
	if maxRSS > 0 {
		out = append(out, targetRow{"gateway peak RSS, c=64, 256 KiB", fmt.Sprintf("%.0f MiB", maxRSS), "< 300 MiB", yesNo(maxRSS < 300)})
	} else {
		na("gateway peak RSS, c=64, 256 KiB", "< 300 MiB")
	}
	return out
}

func ms(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
}

func rate(l *loadResult) string {
	if l == nil {
		return "n/a"
	}
	s := fmt.Sprintf("%.0f", l.PerSec)
	if l.Errors > 0 {
		s += fmt.Sprintf(" (%d err)", l.Errors)
	}
	return s
}

func ratio(a loadResult, b *loadResult) string {
	if b == nil || b.PerSec == 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.2f", a.PerSec/b.PerSec)
}

func p(l *loadResult, q func(*loadResult) time.Duration) string {
	if l == nil {
		return "n/a"
	}
	return ms(q(l))
}

func printReport(w io.Writer, r *benchReport) {
	fmt.Fprintf(w, "tracegw bench (%s) — %s — %s — %.0fs\n", r.Mode, r.Host, r.Started.Format(time.RFC3339), r.Seconds)
	fmt.Fprintf(w, "method: %s\n", r.Method)
	p50 := func(l *loadResult) time.Duration { return l.P50 }
	p99 := func(l *loadResult) time.Duration { return l.P99 }
	for _, st := range r.Stages {
		fmt.Fprintf(w, "\nSaves/s and latency, emulator storage on %s (%s)\n", st.Storage, st.Dir)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "size\tconc\tgateway/s\tp50\tp99\traw/s\tp50\tp99\tnaive/s\tp50\tp99\tgw/raw\tnaive/raw\tgw CPU s/1k\tgw peak RSS MiB\temu CPU s/1k\t")
		for _, c := range st.Cells {
			g := c.Gateway
			fmt.Fprintf(tw, "%d KiB\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.3f\t%.0f\t%.3f\t\n",
				c.SizeKiB, c.Conc, rate(&g), ms(g.P50), ms(g.P99),
				rate(c.Raw), p(c.Raw, p50), p(c.Raw, p99), rate(c.Naive), p(c.Naive, p50), p(c.Naive, p99),
				ratio(g, c.Raw), ratioOf(c.Naive, c.Raw), c.GwCPU1k, c.GwPeakMiB, c.EmuCPU1k)
		}
		tw.Flush()
		for _, c := range st.Cells {
			for name, l := range map[string]*loadResult{"gateway": &c.Gateway, "raw": c.Raw, "naive": c.Naive} {
				if l != nil && l.FirstErr != "" {
					fmt.Fprintf(w, "  %d KiB c=%d %s: %d errors, first: %s\n", c.SizeKiB, c.Conc, name, l.Errors, l.FirstErr)
				}
			}
		}
	}
	if rd := r.Reads; rd != nil {
		fmt.Fprintf(w, "\nIndex reads through HTTP, one request at a time (%d index rows seeded with COPY in %.1fs)\n", rd.Rows, rd.SeedTime)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "query\trequests\treq/s\tp50\tp95\tp99\t")
		for _, x := range []struct {
			name string
			l    loadResult
		}{{"latest 10, toplevel with 10,000 traces", rd.LatestBig}, {"latest 10, toplevel with 25 traces", rd.LatestAll},
			{"latest 10 of 200 toplevels (batch)", rd.Batch200}, {"same batch, index.DB.RecentMany in process (no HTTP, no JSON)", rd.Batch200DB}} {
			fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t\n", x.name, x.l.Ops, x.l.PerSec, ms(x.l.P50), ms(x.l.P95), ms(x.l.P99))
			if x.l.FirstErr != "" {
				fmt.Fprintf(tw, "  errors: %d, first: %s\t\t\t\t\t\t\n", x.l.Errors, x.l.FirstErr)
			}
		}
		tw.Flush()
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
		fmt.Fprintf(w, "  notify deletions/s: %.0f (%d of %d OBJECT_DELETE notifications applied via pstest -> notify.Consumer -> index in %.2fs; %d rows removed; publishing took %.2fs)\n",
			n.PerSec, n.Applied, n.Messages, n.ConsumeSecs, n.RowsRemoved, n.PublishSecs)
		fmt.Fprintf(w, "  the same Pub/Sub delivering the same messages to a Receive that only acks: %.0f/s (%d messages): the transport's ceiling\n", n.CeilingPerSec, n.CeilingN)
		fmt.Fprintf(w, "  index apply only (RemoveManyWithLayers, batches of 1000): %.0f deletions/s over %d\n", n.ApplyPerSec, n.ApplyN)
		if n.Err != "" {
			fmt.Fprintf(w, "  notify error: %s\n", n.Err)
		}
	} else {
		fmt.Fprintln(w, "  notify deletions/s: n/a")
	}
	fmt.Fprintln(w, "\nTargets (issue 9)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "target\tmeasured\tgoal\tmet\t")
	for _, t := range r.Targets {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", t.Target, t.Measured, t.Goal, t.Met)
	}
	tw.Flush()
	fmt.Fprintln(w, strings.Repeat("-", 20))
}

func ratioOf(a, b *loadResult) string {
	if a == nil {
		return "n/a"
	}
	return ratio(*a, b)
}
