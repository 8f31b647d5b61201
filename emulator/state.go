package emulator

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// objState is what the emulator knows about one live object beyond the
// fake's content, size, hashes and generation. Values stored in the
// snapshot are never mutated in place: writers store a fresh copy, so a
// reader may keep a pointer after releasing e.mu.
type objState struct {
	Generation         int64             `json:"generation"`
	Metageneration     int64             `json:"metageneration"`
	Created            time.Time         `json:"created"` // emulator clock
	Updated            time.Time         `json:"updated"` // emulator clock
	CustomTime         time.Time         `json:"customTime,omitzero"`
	TemporaryHold      bool              `json:"temporaryHold,omitempty"`
	EventBasedHold     bool              `json:"eventBasedHold,omitempty"`
	StorageClass       string            `json:"storageClass,omitempty"`
	ContentType        string            `json:"contentType,omitempty"`
	ContentEncoding    string            `json:"contentEncoding,omitempty"`
	ContentDisposition string            `json:"contentDisposition,omitempty"`
	ContentLanguage    string            `json:"contentLanguage,omitempty"`
	CacheControl       string            `json:"cacheControl,omitempty"`
	Metadata           map[string]string `json:"metadata,omitempty"`
}

// bucketState holds the bucket fields the fake drops (lifecycle, labels,
// anything else a client set), its metageneration and notification configs.
type bucketState struct {
	Metageneration int64                      `json:"metageneration"`
	Fields         map[string]json.RawMessage `json:"fields,omitempty"`
	Notifications  []notificationConfig       `json:"notifications,omitempty"`
}

// snapshot is the whole side state, as written to state.json.
type snapshot struct {
	Offset             time.Duration                   `json:"offset"`
	NextNotificationID int64                           `json:"nextNotificationId"`
	Buckets            map[string]*bucketState         `json:"buckets"`
	Objects            map[string]map[string]*objState `json:"objects"`
}

// record is one journal line; Op selects which fields matter.
type record struct {
	Op     string        `json:"op"` // obj, objdel, bucket, bucketdel, clock, nid
	Bucket string        `json:"b,omitempty"`
	Name   string        `json:"n,omitempty"`
	Obj    *objState     `json:"o,omitempty"`
	BState *bucketState  `json:"bs,omitempty"`
	Offset time.Duration `json:"off,omitempty"`
	NID    int64         `json:"nid,omitempty"`
}

const (
	snapshotFile        = "state.json"
	journalFile         = "journal.jsonl"
	journalCompactBytes = 32 << 20
)

func (s *snapshot) apply(r record) {
	switch r.Op {
	case "obj":
		m := s.Objects[r.Bucket]
		if m == nil {
			m = map[string]*objState{}
			s.Objects[r.Bucket] = m
		}
		m[r.Name] = r.Obj
	case "objdel":
		delete(s.Objects[r.Bucket], r.Name)
	case "bucket":
		s.Buckets[r.Bucket] = r.BState
	case "bucketdel":
		delete(s.Buckets, r.Bucket)
		delete(s.Objects, r.Bucket)
	case "clock":
		s.Offset = r.Offset
	case "nid":
		s.NextNotificationID = r.NID
	}
}

// openState loads state.json and replays the journal, reconciles the result
// with the objects the fake holds, then writes a fresh snapshot and starts
// an empty journal. Appending one line per change keeps writes O(1) however
// large the bucket grows.
func (e *Emulator) openState(ctx context.Context) error {
	st := &snapshot{Buckets: map[string]*bucketState{}, Objects: map[string]map[string]*objState{}}
	snapPath := filepath.Join(e.opts.Dir, snapshotFile)
	data, err := os.ReadFile(snapPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return fmt.Errorf("load state: %w", err)
	default:
		if err := json.Unmarshal(data, st); err != nil {
			return fmt.Errorf("load state: decode %s: %w", snapPath, err)
		}
		if st.Buckets == nil {
			st.Buckets = map[string]*bucketState{}
		}
		if st.Objects == nil {
			st.Objects = map[string]map[string]*objState{}
		}
	}
	jPath := filepath.Join(e.opts.Dir, journalFile)
	if err := replayJournal(jPath, st, e); err != nil {
		return err
	}
	e.st = st
	e.offset.Store(int64(st.Offset))
	if err := e.reconcile(ctx); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.compactLocked()
}

func replayJournal(path string, st *snapshot, e *Emulator) error {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("replay journal: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			// A crash can leave a torn last line; everything before it holds.
			e.log.Warn("skip bad journal line", "err", err)
			continue
		}
		st.apply(r)
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("replay journal: %w", err)
	}
	return nil
}

// compactLocked writes the snapshot atomically and truncates the journal.
func (e *Emulator) compactLocked() error {
	e.st.Offset = time.Duration(e.offset.Load())
	data, err := json.Marshal(e.st)
	if err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	tmp := filepath.Join(e.opts.Dir, snapshotFile+".tmp")
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(e.opts.Dir, snapshotFile)); err != nil {
		return fmt.Errorf("write snapshot: %w", err)
	}
	if e.journal != nil {
		e.journal.Close()
	}
	e.journalBytes = 0
	e.journal, err = os.OpenFile(filepath.Join(e.opts.Dir, journalFile), os.O_CREATE|os.O_TRUNC|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open journal: %w", err)
	}
	return nil
}

// appendLocked applies r to the in-memory state and journals it.
func (e *Emulator) appendLocked(r record) error {
	e.st.apply(r)
	line, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("journal %s: %w", r.Op, err)
	}
	line = append(line, '\n')
	if _, err := e.journal.Write(line); err != nil {
		return fmt.Errorf("journal %s: %w", r.Op, err)
	}
	e.journalBytes += int64(len(line))
	if e.journalBytes > journalCompactBytes {
		// Amortised: a snapshot costs O(objects), written once per 32 MiB
		// of changes.
		return e.compactLocked()
	}
	return nil
}

// reconcile makes the side state match the fake's objects: it adopts
// objects it has no record of (or of another generation) and forgets
// records whose object is gone.
func (e *Emulator) reconcile(ctx context.Context) error {
	buckets, err := e.fake.Backend().ListBuckets()
	if err != nil {
		return fmt.Errorf("reconcile: list buckets: %w", err)
	}
	offset := time.Duration(e.offset.Load())
	seen := map[string]bool{}
	for _, b := range buckets {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reconcile: %w", err)
		}
		seen[b.Name] = true
		if e.st.Buckets[b.Name] == nil {
			e.st.Buckets[b.Name] = &bucketState{Metageneration: 1}
		}
		objs, _, err := e.fake.ListObjectsWithOptions(b.Name, fakestorage.ListOptions{})
		if err != nil {
			return fmt.Errorf("reconcile: list objects in %s: %w", b.Name, err)
		}
		have := e.st.Objects[b.Name]
		if have == nil {
			have = map[string]*objState{}
			e.st.Objects[b.Name] = have
		}
		live := make(map[string]bool, len(objs))
		for _, o := range objs {
			live[o.Name] = true
			if s := have[o.Name]; s != nil && s.Generation == o.Generation {
				continue
			}
			s := adoptState(baseFromAttrs(o), offset, e.Now())
			have[o.Name] = &s
		}
		for name := range have {
			if !live[name] {
				delete(have, name)
			}
		}
	}
	for name := range e.st.Buckets {
		if !seen[name] {
			delete(e.st.Buckets, name)
			delete(e.st.Objects, name)
		}
	}
	return nil
}

func (e *Emulator) objectCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, m := range e.st.Objects {
		n += len(m)
	}
	return n
}

// objectState returns the stored state of bucket/name, or nil.
func (e *Emulator) objectState(bucket, name string) *objState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.st.Objects[bucket][name]
}

func (e *Emulator) putObject(bucket, name string, s objState) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.appendLocked(record{Op: "obj", Bucket: bucket, Name: name, Obj: &s})
}

func (e *Emulator) removeObject(bucket, name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.appendLocked(record{Op: "objdel", Bucket: bucket, Name: name})
}

// bucket returns a copy of the bucket's state, or nil if unknown.
func (e *Emulator) bucket(name string) *bucketState {
	e.mu.Lock()
	defer e.mu.Unlock()
	b := e.st.Buckets[name]
	if b == nil {
		return nil
	}
	c := *b
	return &c
}

func (e *Emulator) putBucketLocked(name string, b *bucketState) error {
	return e.appendLocked(record{Op: "bucket", Bucket: name, BState: b})
}

func (e *Emulator) removeBucket(name string) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.appendLocked(record{Op: "bucketdel", Bucket: name})
}
