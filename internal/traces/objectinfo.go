package traces

import "time"

// ObjectInfo is what tracegw knows of a stored object; adapters translate
// their own attribute types into it.
type ObjectInfo struct {
	Key             string
	Generation      int64
	Metageneration  int64
	Size            int64
	ContentType     string
	ContentEncoding string
	Created         time.Time
	CustomTime      time.Time
	TemporaryHold   bool
	Metadata        map[string]string
}

// NewObject is what a write sets on a new object (or a new generation).
type NewObject struct {
	ContentType     string
	ContentEncoding string
	CustomTime      time.Time // set at birth so the lifecycle rule can expire it
	Metadata        map[string]string
}
