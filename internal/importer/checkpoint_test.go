package importer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Lines finish out of order: the prefix advances only over finished lines,
// the set holds the ones above it, and the offset follows the prefix over
// lines whose end was read.
func TestTracker(t *testing.T) {
	t.Parallel()
	tr := newTracker(nil)
	ends := []int64{0, 10, 20, 30, 40, 50} // line n ends at ends[n]
	for n := 1; n <= 5; n++ {
		tr.read(n, ends[n])
	}
	steps := []struct {
		finish      int
		doneThrough int
		done        []int
		offset      int64
		offsetLine  int
	}{
		{2, 0, []int{2}, 0, 1},
		{4, 0, []int{2, 4}, 0, 1},
		{1, 2, []int{4}, 20, 3},
		{3, 4, nil, 40, 5},
		{5, 5, nil, 50, 6},
	}
	for _, s := range steps {
		tr.finish(s.finish)
		cp := tr.checkpoint(Input{}, Counts{})
		got := []any{cp.DoneThrough, cp.Done, cp.Offset, cp.OffsetLine}
		want := []any{s.doneThrough, s.done, s.offset, s.offsetLine}
		if d := cmp.Diff(want, got); d != "" {
			t.Errorf("after finishing %d: (-want +got) [doneThrough done offset offsetLine]:\n%s", s.finish, d)
		}
	}
}

// A resumed tracker knows the earlier run's lines; the offset waits at the
// first line whose end it has not read yet.
func TestTrackerResumed(t *testing.T) {
	t.Parallel()
	tr := newTracker(&Checkpoint{DoneThrough: 2, Done: []int{4}, Offset: 20, OffsetLine: 3})
	for _, n := range []int{1, 2, 4} {
		if !tr.isDone(n) {
			t.Errorf("line %d not done after resuming", n)
		}
	}
	if tr.isDone(3) || tr.isDone(5) {
		t.Error("lines 3 and 5 done after resuming; want them left")
	}
	tr.read(3, 30)
	tr.finish(3) // the prefix reaches 4, whose end is not read yet
	if cp := tr.checkpoint(Input{}, Counts{}); cp.DoneThrough != 4 || cp.Offset != 30 || cp.OffsetLine != 4 {
		t.Errorf("checkpoint = %+v; want done through 4, offset 30 at line 4", cp)
	}
	tr.read(4, 40)
	if cp := tr.checkpoint(Input{}, Counts{}); cp.Offset != 40 || cp.OffsetLine != 5 {
		t.Errorf("checkpoint after reading line 4 = %+v; want offset 40 at line 5", cp)
	}
}

func TestCheckpointFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := filepath.Join(dir, "traces.ndjson")
	if err := os.WriteFile(in, []byte("{}\n{}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id, err := Identify(in)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "traces.ndjson.checkpoint")
	if cp, err := LoadCheckpoint(path, id); cp != nil || err != nil {
		t.Fatalf("LoadCheckpoint of none = %v, %v; want nil, nil", cp, err)
	}
	cp := &Checkpoint{Version: checkpointVersion, Input: id, DoneThrough: 1, Done: []int{3}, Offset: 3, OffsetLine: 2,
		Counts: Counts{Imported: 1, Invalid: 1, Invalids: []Problem{{Line: 3, Reason: "rootTLID: required"}}}}
	if err := cp.Save(path); err != nil {
		t.Fatal(err)
	}
	got, err := LoadCheckpoint(path, id)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(cp, got); d != "" {
		t.Errorf("loaded checkpoint (-saved +loaded):\n%s", d)
	}
	other := id
	other.Size++
	if _, err := LoadCheckpoint(path, other); err == nil || !strings.Contains(err.Error(), "another input") {
		t.Errorf("LoadCheckpoint for another input = %v; want an error saying so", err)
	}
	for name, body := range map[string]string{
		"not JSON":       "{",
		"other version":  `{"version":99}`,
		"done unordered": `{"version":1,"doneThrough":1,"offsetLine":2,"done":[5,3]}`,
		"done in prefix": `{"version":1,"doneThrough":4,"offsetLine":2,"done":[3]}`,
	} {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "-"))
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadCheckpoint(p, Input{}); err == nil || !strings.Contains(err.Error(), "delete it") {
			t.Errorf("%s: LoadCheckpoint = %v; want an error that says to delete it", name, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".tmp") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}
