package importer

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// Input identifies what a checkpoint was written for, so that a checkpoint
// is never applied to another file. A zero Input (standard input) is not
// checked.
type Input struct {
	Size int64  `json:"size"`
	Head string `json:"head"` // hex SHA-256 of the first HeadBytes bytes
}

// HeadBytes is how much of the input Identify hashes.
const HeadBytes = 1 << 20

// Identify reads the identity of the file at path: its size and a hash of
// its head.
func Identify(path string) (Input, error) {
	f, err := os.Open(path)
	if err != nil {
		return Input{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Input{}, err
	}
	h := sha256.New()
	if _, err := io.CopyN(h, f, HeadBytes); err != nil && err != io.EOF {
		return Input{}, fmt.Errorf("read %s: %w", path, err)
	}
	return Input{Size: st.Size(), Head: hex.EncodeToString(h.Sum(nil))}, nil
}

// Checkpoint is what a run has finished, as written to its checkpoint
// file: every line up to DoneThrough, the lines above it in Done, and the
// counts so far, so that a resumed run's summary covers the whole input.
// Lines finish out of order (several are in flight at once), hence the set.
type Checkpoint struct {
	Version int   `json:"version"`
	Input   Input `json:"input"`
	// DoneThrough is the last line of the finished prefix (lines count from
	// 1; 0: none). Line OffsetLine, at or before the line after it,
	// starts at byte Offset: a resumed run on a seekable input seeks there.
	DoneThrough int   `json:"doneThrough"`
	Offset      int64 `json:"offset"`
	OffsetLine  int   `json:"offsetLine"`
	// Done are the finished lines above DoneThrough, ascending.
	Done []int `json:"done,omitempty"`
	// Counts are the outcomes of every finished line.
	Counts Counts `json:"counts"`
}

// checkpointVersion is the format this package writes and reads.
const checkpointVersion = 1

// LoadCheckpoint reads the checkpoint at path for input in. It returns
// (nil, nil) when there is none; a checkpoint of another input or of an
// unknown format is an error that says what to do.
func LoadCheckpoint(path string, in Input) (*Checkpoint, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	var cp Checkpoint
	if err := json.Unmarshal(b, &cp); err != nil || cp.Version != checkpointVersion {
		return nil, fmt.Errorf("checkpoint %s is not a checkpoint of this version of tracegw import: delete it to start over", path)
	}
	if in != (Input{}) && cp.Input != in {
		return nil, fmt.Errorf("checkpoint %s was written for another input (size %d, not %d, or other content): delete it to start over, or name another with --checkpoint",
			path, cp.Input.Size, in.Size)
	}
	if cp.DoneThrough < 0 || cp.Offset < 0 || cp.OffsetLine < 1 || cp.OffsetLine > cp.DoneThrough+1 || !slices.IsSorted(cp.Done) || len(cp.Done) > 0 && cp.Done[0] <= cp.DoneThrough {
		return nil, fmt.Errorf("checkpoint %s is damaged: delete it to start over", path)
	}
	return &cp, nil
}

// Save writes cp to path atomically (a temporary file beside it, synced,
// then renamed over it), so an interruption leaves the old or the new
// checkpoint, never a torn one.
func (cp *Checkpoint) Save(path string) error {
	b, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// tracker is the set of finished lines of a run: a finished prefix and the
// finished lines above it. Not safe for concurrent use (Run locks).
type tracker struct {
	doneThrough int
	offset      int64         // where line offsetLine starts
	offsetLine  int           // a line at or before doneThrough+1
	done        map[int]bool  // finished lines above doneThrough
	ends        map[int]int64 // where each line read above doneThrough ends
}

func newTracker(cp *Checkpoint) *tracker {
	t := &tracker{done: map[int]bool{}, ends: map[int]int64{}, offsetLine: 1}
	if cp != nil {
		t.doneThrough, t.offset, t.offsetLine = cp.DoneThrough, cp.Offset, cp.OffsetLine
		for _, l := range cp.Done {
			t.done[l] = true
		}
	}
	return t
}

// isDone reports whether line finished (in this run or an earlier one).
func (t *tracker) isDone(line int) bool { return line <= t.doneThrough || t.done[line] }

// read records where line ends (the byte offset after its newline).
func (t *tracker) read(line int, end int64) {
	if line >= t.offsetLine {
		t.ends[line] = end
		t.advanceOffset()
	}
}

// finish marks line finished and advances the prefix over every finished
// line that now follows it.
func (t *tracker) finish(line int) {
	t.done[line] = true
	for t.done[t.doneThrough+1] {
		delete(t.done, t.doneThrough+1)
		t.doneThrough++
	}
	t.advanceOffset()
}

// advanceOffset moves the offset over finished lines whose end is known.
// A line finished in an earlier run may not have been read yet in this
// one; the offset then waits at its start.
func (t *tracker) advanceOffset() {
	for t.offsetLine <= t.doneThrough {
		end, ok := t.ends[t.offsetLine]
		if !ok {
			return
		}
		delete(t.ends, t.offsetLine)
		t.offset, t.offsetLine = end, t.offsetLine+1
	}
}

// checkpoint is the tracker's state as a Checkpoint.
func (t *tracker) checkpoint(in Input, c Counts) *Checkpoint {
	cp := &Checkpoint{Version: checkpointVersion, Input: in, DoneThrough: t.doneThrough, Offset: t.offset,
		OffsetLine: t.offsetLine, Counts: c}
	for l := range t.done {
		cp.Done = append(cp.Done, l)
	}
	slices.Sort(cp.Done)
	return cp
}
