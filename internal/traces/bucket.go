package traces

import "time"

// What tracegw manages of its bucket's configuration. The adapter
// (objstore) reads and writes these; the retention package (ttl) decides
// them.

// LifecycleRule is one bucket lifecycle rule, reduced to what tracegw
// manages: its action and its daysSinceCustomTime condition. Other lists
// every other condition as "name=value"; a rule with any is not tracegw's.
type LifecycleRule struct {
	Action              string // "Delete", "SetStorageClass", "AbortIncompleteMultipartUpload"
	StorageClass        string // for SetStorageClass
	DaysSinceCustomTime int64  // 0: condition not set
	Other               []string
}

// BucketSettings is what tracegw checks on its bucket.
type BucketSettings struct {
	Metageneration int64
	Versioning     bool
	SoftDelete     time.Duration // how long deleted objects are kept (and billed); 0 is off
	Lifecycle      []LifecycleRule
}

// BucketUpdate changes a bucket's settings in one PATCH. Nil fields are left
// alone. DropRules are indexes into the Lifecycle read with the same
// metageneration; AddRules are appended after them.
type BucketUpdate struct {
	Versioning *bool
	SoftDelete *time.Duration
	DropRules  []int
	AddRules   []LifecycleRule
}

// NotificationConfig is one Pub/Sub notification config of the bucket.
type NotificationConfig struct {
	ID               string // assigned by GCS
	Topic            string // projects/P/topics/T
	EventTypes       []string
	PayloadFormat    string // JSON_API_V1 or NONE
	ObjectNamePrefix string
}
