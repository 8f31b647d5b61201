package traces

import "time"

// JobID identifies a background job: a UUIDv7 of its start time.
type JobID UUID

// ParseJobID parses a canonical lowercase UUID; the error is a *FieldError
// naming "jobID".
func ParseJobID(s string) (JobID, error) {
	u, err := parseUUID("jobID", s)
	return JobID(u), err
}

func (id JobID) String() string { return UUID(id).String() }

// MarshalText renders the canonical form (JSON and msgpack strings).
func (id JobID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// Job kinds and states.
const (
	JobDeleteCanvas = "delete_canvas"

	JobRunning = "running"
	JobDone    = "done"
	JobFailed  = "failed"
)

// Job is a background job's record.
type Job struct {
	ID      JobID
	Canvas  CanvasID
	Kind    string
	State   string // JobRunning, JobDone or JobFailed
	Deleted int64  // objects deleted so far
	Total   int64  // objects found so far
	Error   string // why it failed, fit for an admin to read
	Created time.Time
	Updated time.Time
}
