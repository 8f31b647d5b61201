package emulator_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/iterator"

	"github.com/tracegw/tracegw/emulator"
)

func (v *env) setLifecycle(t *testing.T, rules ...storage.LifecycleRule) {
	t.Helper()
	_, err := v.Client.Bucket(v.Bucket).Update(t.Context(), storage.BucketAttrsToUpdate{Lifecycle: &storage.Lifecycle{Rules: rules}})
	if err != nil {
		t.Fatalf("set lifecycle: %v", err)
	}
}

func (v *env) names(t *testing.T) []string {
	t.Helper()
	var out []string
	it := v.Client.Bucket(v.Bucket).Objects(t.Context(), nil)
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return out
		}
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		out = append(out, a.Name)
	}
}

func deleteRule(c storage.LifecycleCondition) storage.LifecycleRule {
	return storage.LifecycleRule{Action: storage.LifecycleAction{Type: storage.DeleteAction}, Condition: c}
}

// GCS lifecycle conditions (age, createdBefore, customTimeBefore,
// daysSinceCustomTime, prefixes and suffixes; an object without customTime
// never matches daysSinceCustomTime): each Delete condition, evaluated on
// the emulator clock, deletes exactly the eligible objects.
func TestLifecycleConditions(t *testing.T) {
	t.Parallel()
	type obj struct {
		name       string
		customTime time.Duration // offset from start; 0 = none
	}
	tests := []struct {
		name    string
		objs    []obj
		rule    func(start time.Time) storage.LifecycleCondition
		advance time.Duration
		want    []string // survivors
	}{
		{"age", []obj{{"a", 0}, {"b", 0}},
			func(time.Time) storage.LifecycleCondition { return storage.LifecycleCondition{AgeInDays: 3} },
			71 * time.Hour, []string{"a", "b"}},
		{"age reached", []obj{{"a", 0}},
			func(time.Time) storage.LifecycleCondition { return storage.LifecycleCondition{AgeInDays: 3} },
			73 * time.Hour, nil},
		{"daysSinceCustomTime", []obj{{"none", 0}, {"old", -2 * 24 * time.Hour}, {"new", 2 * 24 * time.Hour}},
			func(time.Time) storage.LifecycleCondition { return storage.LifecycleCondition{DaysSinceCustomTime: 1} },
			time.Hour, []string{"new", "none"}},
		{"customTimeBefore", []obj{{"none", 0}, {"early", -3 * 24 * time.Hour}, {"late", 3 * 24 * time.Hour}},
			func(s time.Time) storage.LifecycleCondition {
				return storage.LifecycleCondition{CustomTimeBefore: s.Truncate(24 * time.Hour)}
			},
			time.Hour, []string{"late", "none"}},
		{"createdBefore", []obj{{"a", 0}},
			func(s time.Time) storage.LifecycleCondition {
				return storage.LifecycleCondition{CreatedBefore: s.Truncate(24 * time.Hour)}
			},
			48 * time.Hour, []string{"a"}},
		{"createdBefore tomorrow", []obj{{"a", 0}},
			func(s time.Time) storage.LifecycleCondition {
				return storage.LifecycleCondition{CreatedBefore: s.Truncate(24 * time.Hour).Add(24 * time.Hour)}
			},
			time.Hour, nil},
		{"matchesPrefix and age", []obj{{"logs/a", 0}, {"logs/b", 0}, {"keep/a", 0}},
			func(time.Time) storage.LifecycleCondition {
				return storage.LifecycleCondition{AllObjects: true, MatchesPrefix: []string{"logs/", "tmp/"}}
			},
			time.Hour, []string{"keep/a"}},
		{"matchesSuffix", []obj{{"a.tmp", 0}, {"a.json", 0}},
			func(time.Time) storage.LifecycleCondition {
				return storage.LifecycleCondition{AgeInDays: 1, MatchesSuffix: []string{".tmp"}}
			},
			25 * time.Hour, []string{"a.json"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := newEnv(t, emulator.Options{Step: 24 * time.Hour})
			start := v.secs()
			for _, o := range tc.objs {
				v.put(t, o.name, "x", func(w *storage.Writer) {
					if o.customTime != 0 {
						w.CustomTime = start.Add(o.customTime)
					}
				})
			}
			v.setLifecycle(t, deleteRule(tc.rule(start)))
			s := v.advance(t, tc.advance)
			got := v.names(t)
			if !slices.Equal(got, tc.want) {
				t.Fatalf("survivors %v, want %v", got, tc.want)
			}
			if s.Deleted != len(tc.objs)-len(tc.want) {
				t.Errorf("summary deleted %d, want %d", s.Deleted, len(tc.objs)-len(tc.want))
			}
		})
	}
}

// Rules OR together; conditions within a rule AND.
func TestLifecycleRulesOr(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{Step: 24 * time.Hour})
	for _, n := range []string{"a/1", "b/1", "c/1"} {
		v.put(t, n, "x", nil)
	}
	v.setLifecycle(t,
		deleteRule(storage.LifecycleCondition{AgeInDays: 1, MatchesPrefix: []string{"a/"}}),
		deleteRule(storage.LifecycleCondition{AgeInDays: 5, MatchesPrefix: []string{"b/"}}),
		storage.LifecycleRule{Action: storage.LifecycleAction{Type: storage.SetStorageClassAction, StorageClass: "NEARLINE"},
			Condition: storage.LifecycleCondition{AgeInDays: 1}})
	v.advance(t, 2*24*time.Hour)
	if got, want := v.names(t), []string{"b/1", "c/1"}; !slices.Equal(got, want) {
		t.Fatalf("after 2 days: %v, want %v", got, want)
	}
	v.advance(t, 3*24*time.Hour)
	if got, want := v.names(t), []string{"c/1"}; !slices.Equal(got, want) {
		t.Fatalf("after 5 days: %v, want %v", got, want)
	}
}

// GCS documents that a lifecycle change may take 24 h to apply and that the
// old rule may act meanwhile. KeepApplyingRules models it: the bucket shows the new
// rule at once, the sweep applies the old one too until the given time.
func TestLifecycleKeepApplyingOldRules(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{Step: time.Hour})
	start := v.E.Now()
	for _, n := range []string{"a", "b"} {
		v.put(t, n, "x", func(w *storage.Writer) { w.CustomTime = start })
	}
	v.setLifecycle(t, deleteRule(storage.LifecycleCondition{DaysSinceCustomTime: 2}))
	v.E.KeepApplyingRules(v.Bucket, start.Add(2*24*time.Hour+2*time.Hour))
	v.setLifecycle(t, deleteRule(storage.LifecycleCondition{DaysSinceCustomTime: 10}))
	attrs, err := v.Client.Bucket(v.Bucket).Attrs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if r := attrs.Lifecycle.Rules; len(r) != 1 || r[0].Condition.DaysSinceCustomTime != 10 {
		t.Fatalf("bucket shows rules %+v, want only the new 10-day rule", r)
	}
	v.advance(t, 24*time.Hour)
	v.put(t, "c", "x", func(w *storage.Writer) { w.CustomTime = v.E.Now() })
	v.advance(t, 24*time.Hour+time.Hour) // a and b are 2 days old: the old rule takes them
	if got, want := v.names(t), []string{"c"}; !slices.Equal(got, want) {
		t.Fatalf("after 2 days: %v, want %v (the old 2-day rule still applies)", got, want)
	}
	v.advance(t, 2*24*time.Hour) // c turns 2 days old at 3d, but the old rule stopped applying at 2d+2h
	if got, want := v.names(t), []string{"c"}; !slices.Equal(got, want) {
		t.Fatalf("after 4 days: %v, want %v (the old rule no longer applies)", got, want)
	}
}

// As GCS does, the sweep skips held objects, deletes them after release if
// they still match, and publishes OBJECT_DELETE (lifecycle deletions
// notify like any other) with the object as it was.
func TestLifecycleSkipsHeldAndPublishesDelete(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{Step: 24 * time.Hour})
	topic := v.topic(t, "deletes")
	n := v.notify(t, storage.Notification{TopicID: topic, EventTypes: []string{storage.ObjectDeleteEvent},
		PayloadFormat: storage.JSONPayload, CustomAttributes: map[string]string{"env": "test"}})
	ct := v.secs()
	v.put(t, "held", "x", func(w *storage.Writer) { w.CustomTime = ct; w.TemporaryHold = true })
	v.put(t, "free", "hello", func(w *storage.Writer) {
		w.CustomTime = ct
		w.Metadata = map[string]string{"k": "v"}
		w.ContentType = "application/json"
	})
	// Hold and release: metageneration 3, temporaryHold false again.
	for _, hold := range []bool{true, false} {
		if _, err := v.obj("free").Update(t.Context(), storage.ObjectAttrsToUpdate{TemporaryHold: hold}); err != nil {
			t.Fatalf("toggle hold: %v", err)
		}
	}
	before := v.attrs(t, "free")
	v.setLifecycle(t, deleteRule(storage.LifecycleCondition{DaysSinceCustomTime: 7}))

	if s := v.advance(t, 6*24*time.Hour); s.Deleted != 0 {
		t.Fatalf("day 6: deleted %d, want 0", s.Deleted)
	}
	s := v.advance(t, 24*time.Hour)
	if s.Deleted != 1 || !v.exists(t, "held") || v.exists(t, "free") {
		t.Fatalf("day 7: deleted %d, held exists %v, free exists %v: want only free deleted", s.Deleted, v.exists(t, "held"), v.exists(t, "free"))
	}
	msgs := v.messages(topic)
	if len(msgs) != 1 {
		t.Fatalf("got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	wantAttrs := map[string]string{
		"notificationConfig": "projects/_/buckets/" + v.Bucket + "/notificationConfigs/" + n.ID,
		"eventType":          "OBJECT_DELETE",
		"payloadFormat":      "JSON_API_V1",
		"bucketId":           v.Bucket,
		"objectId":           "free",
		"objectGeneration":   strconv.FormatInt(before.Generation, 10),
		"env":                "test",
	}
	for k, want := range wantAttrs {
		if got := m.Attributes[k]; got != want {
			t.Errorf("attribute %s = %q, want %q", k, got, want)
		}
	}
	et, err := time.Parse(time.RFC3339, m.Attributes["eventTime"])
	if err != nil || et.Before(ct.Add(7*24*time.Hour)) {
		t.Errorf("eventTime %q (%v): want an RFC 3339 time on the advanced clock", m.Attributes["eventTime"], err)
	}
	if _, ok := m.Attributes["overwrittenByGeneration"]; ok {
		t.Errorf("lifecycle delete carries overwrittenByGeneration")
	}
	var body map[string]any
	if err := json.Unmarshal(m.Data, &body); err != nil {
		t.Fatalf("decode payload: %v", err)
	}
	wantBody := map[string]any{
		"kind": "storage#object", "name": "free", "bucket": v.Bucket,
		"generation": strconv.FormatInt(before.Generation, 10), "metageneration": "3",
		"temporaryHold": false, "eventBasedHold": false, "size": "5",
		"contentType": "application/json", "customTime": ct.UTC().Format("2006-01-02T15:04:05.000Z"),
		"storageClass": "STANDARD", "metadata": map[string]any{"k": "v"},
		"id": v.Bucket + "/free/" + strconv.FormatInt(before.Generation, 10), "etag": before.Etag,
	}
	for k, want := range wantBody {
		if got := body[k]; !jsonEqual(got, want) {
			t.Errorf("payload %s = %v, want %v", k, got, want)
		}
	}
	for _, k := range []string{"selfLink", "mediaLink", "md5Hash", "crc32c", "timeCreated", "updated"} {
		if s, _ := body[k].(string); s == "" {
			t.Errorf("payload lacks %s", k)
		}
	}

	// Released, the held object goes on the next sweep.
	if _, err := v.obj("held").Update(t.Context(), storage.ObjectAttrsToUpdate{TemporaryHold: false}); err != nil {
		t.Fatalf("release: %v", err)
	}
	if n, err := v.E.ApplyLifecycle(t.Context()); err != nil || n != 1 || v.exists(t, "held") {
		t.Fatalf("sweep after release: deleted %d, %v; want the released object gone", n, err)
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}

// Lifecycle rules are stored and returned, and setting them keeps the
// bucket's other fields (fake-gcs-server's own PATCH resets them).
func TestBucketLifecycleRoundTrip(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{})
	b := v.Client.Bucket(v.Bucket)
	if _, err := b.Update(t.Context(), storage.BucketAttrsToUpdate{}); err != nil {
		t.Fatalf("empty update: %v", err)
	}
	u := storage.BucketAttrsToUpdate{}
	u.SetLabel("team", "traces")
	if _, err := b.Update(t.Context(), u); err != nil {
		t.Fatalf("set label: %v", err)
	}
	rule := deleteRule(storage.LifecycleCondition{DaysSinceCustomTime: 8, MatchesPrefix: []string{"x/"}})
	v.setLifecycle(t, rule)
	a, err := b.Attrs(t.Context())
	if err != nil {
		t.Fatalf("attrs: %v", err)
	}
	if len(a.Lifecycle.Rules) != 1 || a.Lifecycle.Rules[0].Condition.DaysSinceCustomTime != 8 ||
		!slices.Equal(a.Lifecycle.Rules[0].Condition.MatchesPrefix, []string{"x/"}) || a.Lifecycle.Rules[0].Action.Type != "Delete" {
		t.Errorf("lifecycle %+v, want the rule back", a.Lifecycle)
	}
	if a.Labels["team"] != "traces" || a.VersioningEnabled {
		t.Errorf("labels %v versioning %v: the lifecycle update must keep other fields", a.Labels, a.VersioningEnabled)
	}
	if a.MetaGeneration < 3 {
		t.Errorf("bucket metageneration %d, want it bumped by each update", a.MetaGeneration)
	}
	v.setLifecycle(t)
	if a, _ := b.Attrs(t.Context()); len(a.Lifecycle.Rules) != 0 || a.Labels["team"] != "traces" {
		t.Errorf("after clearing: lifecycle %+v labels %v", a.Lifecycle, a.Labels)
	}
	_, err = b.Update(t.Context(), storage.BucketAttrsToUpdate{VersioningEnabled: true})
	if code(err) != 400 {
		t.Errorf("enable versioning: got %v, want 400 (unsupported)", err)
	}
	bad := deleteRule(storage.LifecycleCondition{})
	if _, err := b.Update(t.Context(), storage.BucketAttrsToUpdate{Lifecycle: &storage.Lifecycle{Rules: []storage.LifecycleRule{bad}}}); code(err) != 400 {
		t.Errorf("rule without condition: got %v, want 400", err)
	}
	it := v.Client.Buckets(t.Context(), project)
	it.Prefix = v.Bucket
	listed, err := it.Next()
	if err != nil || listed.Name != v.Bucket || len(listed.Lifecycle.Rules) != 0 || listed.Labels["team"] != "traces" {
		t.Errorf("bucket list item %+v, %v: want the stored fields", listed, err)
	}
	if _, err := b.Update(t.Context(), storage.BucketAttrsToUpdate{DefaultEventBasedHold: true}); err != nil {
		t.Fatalf("set defaultEventBasedHold: %v", err)
	}
	if a := v.put(t, "born-held", "x", nil); !a.EventBasedHold {
		t.Errorf("object in a defaultEventBasedHold bucket: eventBasedHold false")
	}
	created := v.Client.Bucket("made-with-rules-" + v.Bucket[5:])
	if err := created.Create(t.Context(), project, &storage.BucketAttrs{Lifecycle: storage.Lifecycle{Rules: []storage.LifecycleRule{rule}}}); err != nil {
		t.Fatalf("create bucket with rules: %v", err)
	}
	if a, err := created.Attrs(t.Context()); err != nil || len(a.Lifecycle.Rules) != 1 {
		t.Errorf("created bucket lifecycle %+v, %v: want 1 rule", a, err)
	}
}
