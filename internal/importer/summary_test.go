package importer

import (
	"context"
	"strings"
	"testing"
	"time"
)

func TestSummaryWrite(t *testing.T) {
	t.Parallel()
	s := Summary{
		Counts: Counts{Imported: 7, Present: 2, Conflicting: 1, Invalid: 2,
			Conflicts: []Problem{{Line: 4, Canvas: testCanvas, TraceID: testTrace}},
			Invalids:  []Problem{{Line: 2, Reason: "rootTLID: required"}},
		},
		Resumed: true, Skipped: 5, Sent: 8, Duration: 2 * time.Second, Concurrency: 4, Complete: true,
	}
	var b strings.Builder
	s.Write(&b)
	want := `imported 7, already present 2, conflicting 1, invalid 2
this run: 8 sent in 2s (4 traces/s at concurrency 4); resumed from a checkpoint: 5 lines were done before
conflicting: another document is stored under the trace ID; nothing was overwritten:
  line 4: canvas ` + testCanvas + `, trace ` + testTrace + `
invalid (the first 1 of 2):
  line 2: rootTLID: required
`
	if b.String() != want {
		t.Errorf("Write =\n%s\nwant\n%s", b.String(), want)
	}

	b.Reset()
	Summary{DryRun: true, Counts: Counts{Valid: 3}}.Write(&b)
	if want := "dry run: 3 lines valid, 0 invalid (stopped before the end); nothing was sent\n"; b.String() != want {
		t.Errorf("dry run Write = %q, want %q", b.String(), want)
	}
}

// A dry run decodes every line with the gateway's rules and sends
// nothing: the Saver is never called, invalid lines are listed by number.
func TestRunDryRun(t *testing.T) {
	t.Parallel()
	ok := `{"canvasID":"` + testCanvas + `","traceID":"` + testTrace + `","rootTLID":"1"}`
	in := ok + "\n\n" + `{"canvasID":"` + testCanvas + `","rootTLID":"1"}` + "\n" + ok + "\n" + "{oops\n"
	var progress []int
	sum, err := Run(context.Background(), strings.NewReader(in), nil, Options{DryRun: true, Concurrency: 2,
		OnProgress: func(p Progress) { progress = append(progress, p.Lines) }})
	if err != nil {
		t.Fatal(err)
	}
	if sum.Valid != 2 || sum.Invalid != 2 || !sum.Complete || sum.Sent != 0 {
		t.Errorf("summary = %+v; want 2 valid, 2 invalid, complete, nothing sent", sum)
	}
	if len(sum.Invalids) != 2 || sum.Invalids[0].Line != 3 || !strings.HasPrefix(sum.Invalids[0].Reason, "traceID:") || sum.Invalids[1].Line != 5 {
		t.Errorf("invalid lines = %+v; want line 3 (traceID) and line 5", sum.Invalids)
	}
	if want := []int{1, 1, 2, 3, 4}; len(progress) != len(want) || progress[len(progress)-1] != 4 {
		t.Errorf("progress = %v, want %v", progress, want)
	}
}
