package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tracegw/tracegw/testutil"
)

// lockedBuffer collects the log lines of the whole dev process.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// TestDevLogsEachAttributeOnce runs dev with its production logger (JSON
// this time, so keys can be read exactly), drives the API, the emulator's
// clock, GC, the notification consumer and a canvas deletion job, and
// checks that no log line carries an attribute twice (the emulator's said
// component=emulator twice, the canvas jobs' component).
func TestDevLogsEachAttributeOnce(t *testing.T) {
	var buf lockedBuffer
	dt := startDevTestLog(t, testutil.PG(t), newLogger(&buf, false))
	const canvas = "7d3f5a1c-0000-4000-8000-0000000000ad"
	for range 12 {
		dt.save(canvas, "1")
	}
	if st, b := dt.do("POST", "/v1/canvases/"+canvas+"/traces", `{"rootTLID":[]}`); st != 400 {
		t.Fatalf("bad save: %d %s", st, b)
	}
	dt.advance("8d")
	st, b := dt.do("DELETE", "/v1/canvases/"+canvas, "")
	if st != 202 {
		t.Fatalf("delete canvas: %d %s", st, b)
	}
	var job struct{ JobID, State string }
	if err := json.Unmarshal(b, &job); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, 30*time.Second, "the canvas deletion job to finish", func() bool {
		_, b := dt.do("GET", "/v1/jobs/"+job.JobID, "")
		return json.Unmarshal(b, &job) == nil && job.State != "running"
	})

	components := map[string]int{}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	for _, line := range lines {
		dups, comp, err := duplicateKeys([]byte(line))
		if err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if len(dups) > 0 {
			t.Errorf("log line repeats %v: %s", dups, line)
		}
		components[comp]++
	}
	// The check must have seen the parts that add their component.
	for _, c := range []string{"emulator", "http", "canvases", "ttl"} {
		if components[c] == 0 {
			t.Errorf("no log line of component %s among %d lines (%v)", c, len(lines), components)
		}
	}
}

// duplicateKeys returns the keys that appear more than once in one object
// of the JSON text line (at any depth), and the value of its top-level
// "component".
func duplicateKeys(line []byte) (dups []string, component string, err error) {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	type frame struct {
		obj     bool
		keys    map[string]bool
		wantKey bool
	}
	var stack []*frame
	lastKey := ""
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return dups, component, nil
		}
		if err != nil {
			return nil, "", err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.wantKey {
			k, _ := tok.(string)
			if top.keys[k] {
				dups = append(dups, k)
			}
			top.keys[k], top.wantKey, lastKey = true, false, k
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &frame{obj: true, keys: map[string]bool{}, wantKey: true})
			continue
		case json.Delim('['):
			stack = append(stack, &frame{})
			continue
		case json.Delim('}'), json.Delim(']'):
			stack = stack[:len(stack)-1]
		default:
			if s, ok := tok.(string); ok && len(stack) == 1 && lastKey == "component" {
				component = s
			}
		}
		if len(stack) > 0 && stack[len(stack)-1].obj {
			stack[len(stack)-1].wantKey = true
		}
	}
}
