package importer

import (
	"fmt"
	"io"
	"time"
)

// MaxListed bounds the conflicting and the invalid lines a Summary lists
// (and a checkpoint keeps); the counts stay exact.
const MaxListed = 1000

// Problem is a line that was not imported: its number, and what is known
// of it.
type Problem struct {
	Line    int    `json:"line"`
	Canvas  string `json:"canvasID,omitempty"`
	TraceID string `json:"traceID,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Counts are the outcomes of the finished lines (blank lines are not
// counted).
type Counts struct {
	Imported    int       `json:"imported"`    // the gateway stored them (201)
	Present     int       `json:"present"`     // it already held the identical trace (200)
	Valid       int       `json:"valid"`       // a dry run's lines that decode
	Conflicting int       `json:"conflicting"` // another document holds the ID (409)
	Invalid     int       `json:"invalid"`     // refused, here or by the gateway
	Conflicts   []Problem `json:"conflicts,omitempty"`
	Invalids    []Problem `json:"invalids,omitempty"`
}

// Lines is the number of finished lines.
func (c Counts) Lines() int { return c.Imported + c.Present + c.Valid + c.Conflicting + c.Invalid }

func (c *Counts) conflict(p Problem) {
	c.Conflicting++
	if len(c.Conflicts) < MaxListed {
		c.Conflicts = append(c.Conflicts, p)
	}
}

func (c *Counts) invalid(p Problem) {
	c.Invalid++
	if len(c.Invalids) < MaxListed {
		c.Invalids = append(c.Invalids, p)
	}
}

// Summary is the outcome of a run: the counts over the whole input (an
// earlier, interrupted run's included) and this run's own figures.
type Summary struct {
	Counts
	DryRun bool
	// Resumed is true when the run continued from a checkpoint; Skipped
	// counts the lines an earlier run had finished.
	Resumed bool
	Skipped int
	// Sent is the number of lines this run sent; Duration how long it took.
	Sent        int
	Duration    time.Duration
	Concurrency int
	// Complete is false when the run stopped before the end of the input
	// (interrupted, or a failure it could not get past).
	Complete bool
}

// Rate is this run's lines sent per second (0 when none).
func (s Summary) Rate() float64 {
	if s.Duration <= 0 || s.Sent == 0 {
		return 0
	}
	return float64(s.Sent) / s.Duration.Seconds()
}

// Write prints the summary for a person: one line of counts, then the
// conflicting and the invalid lines with their numbers.
func (s Summary) Write(w io.Writer) {
	state := ""
	if !s.Complete {
		state = " (stopped before the end)"
	}
	if s.DryRun {
		fmt.Fprintf(w, "dry run: %d lines valid, %d invalid%s; nothing was sent\n", s.Valid, s.Invalid, state)
	} else {
		fmt.Fprintf(w, "imported %d, already present %d, conflicting %d, invalid %d%s\n",
			s.Imported, s.Present, s.Conflicting, s.Invalid, state)
		fmt.Fprintf(w, "this run: %d sent in %s", s.Sent, s.Duration.Round(time.Millisecond))
		if r := s.Rate(); r > 0 {
			fmt.Fprintf(w, " (%.0f traces/s at concurrency %d)", r, s.Concurrency)
		}
		if s.Resumed {
			fmt.Fprintf(w, "; resumed from a checkpoint: %d lines were done before", s.Skipped)
		}
		fmt.Fprintln(w)
	}
	if s.Conflicting > 0 {
		fmt.Fprintf(w, "conflicting: another document is stored under the trace ID; nothing was overwritten%s\n", more(s.Conflicting, len(s.Conflicts)))
		for _, p := range s.Conflicts {
			fmt.Fprintf(w, "  line %d: canvas %s, trace %s\n", p.Line, p.Canvas, p.TraceID)
		}
	}
	if s.Invalid > 0 {
		fmt.Fprintf(w, "invalid%s\n", more(s.Invalid, len(s.Invalids)))
		for _, p := range s.Invalids {
			fmt.Fprintf(w, "  line %d: %s\n", p.Line, p.Reason)
		}
	}
}

// more says how many of n are listed when not all are.
func more(n, listed int) string {
	if listed >= n {
		return ":"
	}
	return fmt.Sprintf(" (the first %d of %d):", listed, n)
}
