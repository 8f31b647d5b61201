package notify

import (
	"maps"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/tracegw/tracegw/internal/index"
	"github.com/tracegw/tracegw/internal/traces"
)

func TestDecide(t *testing.T) {
	const bucket = "traces-bkt"
	c := testCanvas(7)
	id := traces.NewTraceID(eventTime)
	traceKey := traces.TraceKey(c, id)
	remove := Action{Kind: Remove, Key: traces.Key{Kind: traces.KindTrace, Canvas: c, Trace: id},
		Deletion: index.Deletion{Canvas: c, ID: id, Generation: 42}, EventTime: eventTime}
	ignore := func(r Reason, k traces.Key) Action {
		return Action{Kind: Ignore, Reason: r, Key: k, EventTime: eventTime}
	}
	without := func(attr string) func(map[string]string, []byte) (map[string]string, []byte) {
		return func(a map[string]string, d []byte) (map[string]string, []byte) { delete(a, attr); return a, d }
	}
	set := func(attr, v string) func(map[string]string, []byte) (map[string]string, []byte) {
		return func(a map[string]string, d []byte) (map[string]string, []byte) { a[attr] = v; return a, d }
	}
	body := func(b string) func(map[string]string, []byte) (map[string]string, []byte) {
		return func(a map[string]string, _ []byte) (map[string]string, []byte) { return a, []byte(b) }
	}

	tests := []struct {
		name   string
		event  string
		key    string
		extra  map[string]string
		mutate func(map[string]string, []byte) (map[string]string, []byte)
		want   Action
	}{
		{name: "delete of a trace removes rows of that generation or older", want: remove},
		{name: "archive (versioned bucket) is a delete", event: EventArchive, want: remove},
		{name: "payload NONE with no body", mutate: func(a map[string]string, _ []byte) (map[string]string, []byte) {
			a["payloadFormat"] = "NONE"
			return a, nil
		}, want: remove},
		{name: "custom attributes are fine", extra: map[string]string{"env": "prod"}, want: remove},
		{name: "eventTime missing: still removed, no lag", mutate: without("eventTime"),
			want: func() Action { a := remove; a.EventTime = time.Time{}; return a }()},
		{name: "notificationConfig missing (fake-gcs-server omits it)", mutate: without("notificationConfig"), want: remove},

		{name: "overwrite: delete carrying overwrittenByGeneration",
			extra: map[string]string{"overwrittenByGeneration": "43"},
			want:  ignore(ReasonOverwrite, remove.Key)},
		{name: "overwrite under versioning: archive carrying overwrittenByGeneration", event: EventArchive,
			extra: map[string]string{"overwrittenByGeneration": "43"},
			want:  ignore(ReasonOverwrite, remove.Key)},
		{name: "finalize", event: EventFinalize, want: ignore(ReasonEventType, traces.Key{})},
		{name: "finalize of an overwrite", event: EventFinalize,
			extra: map[string]string{"overwroteGeneration": "41"}, want: ignore(ReasonEventType, traces.Key{})},
		{name: "metadata update", event: EventMetadataUpdate, want: ignore(ReasonEventType, traces.Key{})},
		{name: "unknown future event type", event: "OBJECT_RESTORE", want: ignore(ReasonEventType, traces.Key{})},
		{name: "another bucket", mutate: func(a map[string]string, _ []byte) (map[string]string, []byte) {
			a["bucketId"] = "other"
			_, d := gcsNotification("other", EventDelete, traceKey, 42, nil)
			return a, d
		}, want: ignore(ReasonForeignBucket, traces.Key{})},
		{name: "foreign name", key: "backups/db.tar", want: ignore(ReasonForeignKey, traces.Key{})},
		{name: "foreign name under a canvas", key: c.String() + "/misc/x", want: ignore(ReasonForeignKey, traces.Key{})},
		{name: "uppercase trace ID is not ours", key: c.String() + "/traces/" + upper(id.String()),
			want: ignore(ReasonForeignKey, traces.Key{})},
		{name: "layer", key: traces.LayerKey(c, id, 3),
			want: ignore(ReasonLayer, traces.Key{Kind: traces.KindLayer, Canvas: c, Trace: id, Layer: 3})},
		{name: "unmatched request", key: traces.UnmatchedKey(c, id),
			want: Action{Kind: Ignore, Reason: ReasonUnmatched, Key: traces.Key{Kind: traces.KindUnmatched, Canvas: c, Trace: id},
				Deletion: index.Deletion{Canvas: c, ID: id, Generation: 42}, EventTime: eventTime}},

		{name: "eventType missing", mutate: without("eventType"), want: malformed("missing eventType")},
		{name: "bucketId missing", mutate: without("bucketId"), want: malformed("missing bucketId")},
		{name: "objectId missing", mutate: without("objectId"), want: malformed("missing objectId")},
		{name: "objectGeneration missing", mutate: without("objectGeneration"), want: malformed("bad objectGeneration")},
		{name: "objectGeneration not a number", mutate: set("objectGeneration", "4x"), want: malformed("bad objectGeneration")},
		{name: "objectGeneration zero", mutate: set("objectGeneration", "0"), want: malformed("bad objectGeneration")},
		{name: "overwrittenByGeneration empty", extra: map[string]string{"overwrittenByGeneration": ""},
			want: malformed("bad overwrittenByGeneration")},
		{name: "unknown payload format", mutate: set("payloadFormat", "XML"), want: malformed("unknown payloadFormat")},
		{name: "body not JSON", mutate: body("{"), want: malformed("body is not an object resource")},
		{name: "body names another object", mutate: body(`{"name":"x","bucket":"traces-bkt","generation":"42"}`),
			want: malformed("body name differs from objectId")},
		{name: "body names another generation", mutate: body(`{"name":"` + traceKey + `","generation":"41"}`),
			want: malformed("body generation differs from objectGeneration")},
		{name: "no attributes at all", mutate: func(map[string]string, []byte) (map[string]string, []byte) { return nil, []byte("hello") },
			want: malformed("missing eventType")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			event, key := tt.event, tt.key
			if event == "" {
				event = EventDelete
			}
			if key == "" {
				key = traceKey
			}
			attrs, data := gcsNotification(bucket, event, key, 42, tt.extra)
			if tt.mutate != nil {
				attrs, data = tt.mutate(maps.Clone(attrs), data)
			}
			got := Decide(attrs, data, bucket)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Decide (-want +got):\n%s", diff)
			}
		})
	}
}

func upper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'a' && c <= 'f' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}
