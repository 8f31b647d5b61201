package notify

import (
	"bytes"
	"encoding/json"
	"strconv"
	"time"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

// GCS notification attributes: always notificationConfig, eventType,
// payloadFormat, bucketId, objectId, objectGeneration and eventTime;
// overwrittenByGeneration on the deletion of a generation an overwrite
// replaced. All values are strings.
const (
	attrNotificationConfig = "notificationConfig"
	attrEventType          = "eventType"
	attrPayloadFormat      = "payloadFormat"
	attrBucketID           = "bucketId"
	attrObjectID           = "objectId"
	attrObjectGeneration   = "objectGeneration"
	attrEventTime          = "eventTime"
	attrOverwrittenBy      = "overwrittenByGeneration"
	attrOverwrote          = "overwroteGeneration"
)

// GCS event types.
const (
	EventFinalize       = "OBJECT_FINALIZE"
	EventMetadataUpdate = "OBJECT_METADATA_UPDATE"
	EventDelete         = "OBJECT_DELETE"
	EventArchive        = "OBJECT_ARCHIVE"
)

// Payload formats.
const (
	payloadJSON = "JSON_API_V1"
	payloadNone = "NONE"
)

// Kind is what the consumer does with a notification.
type Kind int

// The kinds of Action.
const (
	// Remove deletes the trace's index rows if they describe
	// Action.Deletion.Generation or an older one.
	Remove Kind = iota + 1
	// Ignore changes nothing; Action.Reason says why. The message is acked.
	Ignore
	// Malformed changes nothing: the message is not a GCS notification
	// tracegw can read. It is acked, logged once and counted.
	Malformed
)

func (k Kind) String() string {
	switch k {
	case Remove:
		return "remove"
	case Ignore:
		return "ignore"
	case Malformed:
		return "malformed"
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Reason says why a notification is ignored. The values are the "reason"
// label of tracegw_notify_ignored_total.
type Reason string

// The reasons for Ignore.
const (
	// ReasonOverwrite: an OBJECT_DELETE (or ARCHIVE) carrying
	// overwrittenByGeneration. The name lives on in a newer generation,
	// whose FINALIZE the index already reflects; nothing is removed.
	ReasonOverwrite Reason = "overwrite"
	// ReasonEventType: OBJECT_FINALIZE, OBJECT_METADATA_UPDATE or an event
	// type GCS may add later. The notification config should select
	// OBJECT_DELETE only; these arrive if it does not.
	ReasonEventType Reason = "event_type"
	// ReasonForeignBucket: the notification is about another bucket.
	ReasonForeignBucket Reason = "foreign_bucket"
	// ReasonForeignKey: the object name does not follow tracegw's layout.
	ReasonForeignKey Reason = "foreign_key"
	// ReasonLayer: a layer object was deleted. Layers have no index rows of
	// their own (the trace row only counts them), so nothing changes.
	ReasonLayer Reason = "layer"
	// ReasonUnmatched: an unmatched request ("404") was deleted. It has no
	// index rows yet; Action.Deletion is filled in so that a future table can
	// be cleaned through Options.Unmatched.
	ReasonUnmatched Reason = "unmatched"
)

// Action is the decision for one notification.
type Action struct {
	Kind Kind
	// Reason is set for Ignore.
	Reason Reason
	// Detail says what was wrong for Malformed (for the log line).
	Detail string
	// Key is the parsed object name (zero for Malformed and foreign keys).
	Key traces.Key
	// Deletion names the rows to remove for Remove (and the unmatched
	// request for ReasonUnmatched).
	Deletion index.Deletion
	// EventTime is the eventTime attribute, zero if absent or unparsable.
	EventTime time.Time
}

// Decide maps one GCS notification (its attributes and data) to an action,
// given the bucket tracegw owns. It is pure: no I/O, no clock.
//
// The rules, in order:
//   - eventType, bucketId, objectId and objectGeneration (a positive decimal)
//     are required, overwrittenByGeneration must be a positive decimal if
//     present, payloadFormat must be JSON_API_V1, NONE or absent, and a
//     JSON_API_V1 body, when there is one, must be an object resource whose
//     name, bucket and generation agree with the attributes; otherwise
//     Malformed. eventTime is optional (it only feeds the lag metric).
//   - another bucket: Ignore/foreign_bucket;
//   - anything but OBJECT_DELETE and OBJECT_ARCHIVE: Ignore/event_type;
//   - a name outside the layout: Ignore/foreign_key;
//   - overwrittenByGeneration present: Ignore/overwrite;
//   - a layer: Ignore/layer; an unmatched request: Ignore/unmatched;
//   - a trace: Remove rows of objectGeneration or older.
//
// OBJECT_ARCHIVE is treated like OBJECT_DELETE: it is what a versioned
// bucket sends when the live version becomes noncurrent, after which reads of
// the name find nothing, exactly as after a delete (see doc.go).
func Decide(attrs map[string]string, data []byte, bucket string) Action {
	eventType := attrs[attrEventType]
	bucketID := attrs[attrBucketID]
	objectID := attrs[attrObjectID]
	switch {
	case eventType == "":
		return malformed("missing " + attrEventType)
	case bucketID == "":
		return malformed("missing " + attrBucketID)
	case objectID == "":
		return malformed("missing " + attrObjectID)
	}
	gen, ok := parseGeneration(attrs[attrObjectGeneration])
	if !ok {
		return malformed("bad " + attrObjectGeneration)
	}
	overwritten, isOverwrite := attrs[attrOverwrittenBy]
	if isOverwrite {
		if _, ok := parseGeneration(overwritten); !ok {
			return malformed("bad " + attrOverwrittenBy)
		}
	}
	if why := checkPayload(attrs[attrPayloadFormat], data, bucketID, objectID, gen); why != "" {
		return malformed(why)
	}
	a := Action{Kind: Ignore}
	if t, err := time.Parse(time.RFC3339Nano, attrs[attrEventTime]); err == nil {
		a.EventTime = t
	}
	if bucketID != bucket {
		a.Reason = ReasonForeignBucket
		return a
	}
	if eventType != EventDelete && eventType != EventArchive {
		a.Reason = ReasonEventType
		return a
	}
	key, err := traces.ParseKey(objectID)
	if err != nil {
		a.Reason = ReasonForeignKey
		return a
	}
	a.Key = key
	if isOverwrite {
		a.Reason = ReasonOverwrite
		return a
	}
	a.Deletion = index.Deletion{Canvas: key.Canvas, ID: key.Trace, Generation: gen}
	switch key.Kind {
	case traces.KindLayer:
		a.Reason, a.Deletion = ReasonLayer, index.Deletion{}
	case traces.KindUnmatched:
		a.Reason = ReasonUnmatched
	case traces.KindTrace:
		a.Kind = Remove
	default:
		a.Reason, a.Deletion = ReasonForeignKey, index.Deletion{}
	}
	return a
}

func malformed(detail string) Action { return Action{Kind: Malformed, Detail: detail} }

// parseGeneration accepts a positive decimal int64, as GCS formats it.
func parseGeneration(s string) (int64, bool) {
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n > 0
}

// objectResource is the part of a JSON_API_V1 body Decide cross-checks.
// GCS sends generation as a decimal string.
type objectResource struct {
	Name       *string `json:"name"`
	Bucket     *string `json:"bucket"`
	Generation *string `json:"generation"`
}

// checkPayload returns why the payload is unacceptable, or "". An empty body
// is accepted whatever the format: the attributes carry everything needed.
func checkPayload(format string, data []byte, bucket, object string, gen int64) string {
	switch format {
	case "", payloadNone, payloadJSON:
	default:
		return "unknown " + attrPayloadFormat
	}
	if format != payloadJSON || len(bytes.TrimSpace(data)) == 0 {
		return ""
	}
	var o objectResource
	if err := json.Unmarshal(data, &o); err != nil {
		return "body is not an object resource"
	}
	switch {
	case o.Name != nil && *o.Name != object:
		return "body name differs from " + attrObjectID
	case o.Bucket != nil && *o.Bucket != bucket:
		return "body bucket differs from " + attrBucketID
	case o.Generation != nil && *o.Generation != strconv.FormatInt(gen, 10):
		return "body generation differs from " + attrObjectGeneration
	}
	return ""
}
