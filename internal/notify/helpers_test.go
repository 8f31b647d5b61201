package notify

import (
	"encoding/json"
	"maps"
	"strconv"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// eventTime is when the test notifications say their events happened (never
// the wall clock).
var eventTime = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// gcsNotification returns the attributes and JSON_API_V1 body GCS publishes
// for eventType on object key at generation gen in bucket:
// every documented attribute, the object resource as the body, and extra
// attributes (overwrittenByGeneration, custom ones) on top.
func gcsNotification(bucket, eventType, key string, gen int64, extra map[string]string) (map[string]string, []byte) {
	g := strconv.FormatInt(gen, 10)
	attrs := map[string]string{
		"notificationConfig": "projects/_/buckets/" + bucket + "/notificationConfigs/1",
		"eventType":          eventType,
		"payloadFormat":      "JSON_API_V1",
		"bucketId":           bucket,
		"objectId":           key,
		"objectGeneration":   g,
		"eventTime":          eventTime.Format(time.RFC3339Nano),
	}
	maps.Copy(attrs, extra)
	body, err := json.Marshal(map[string]any{
		"kind":           "storage#object",
		"id":             bucket + "/" + key + "/" + g,
		"selfLink":       "https://www.googleapis.com/storage/v1/b/" + bucket + "/o/" + key,
		"name":           key,
		"bucket":         bucket,
		"generation":     g,
		"metageneration": "1",
		"contentType":    "application/msgpack",
		"timeCreated":    eventTime.Add(-time.Hour).Format(time.RFC3339Nano),
		"updated":        eventTime.Add(-time.Hour).Format(time.RFC3339Nano),
		"customTime":     eventTime.Add(-time.Hour).Format(time.RFC3339),
		"storageClass":   "STANDARD",
		"size":           "1234",
		"md5Hash":        "1B2M2Y8AsgTpgAmY7PhCfg==",
		"crc32c":         "AAAAAA==",
		"etag":           "CJ+Fz8+Lz4UDEAE=",
	})
	if err != nil {
		panic(err)
	}
	return attrs, body
}

func testCanvas(b byte) traces.CanvasID {
	var c traces.CanvasID
	c[0], c[6], c[8], c[15] = b, 0x40, 0x80, b
	return c
}
