package emulator_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"

	"cloud.google.com/go/storage"

	"github.com/tracegw/tracegw/emulator"
)

type gotMsg struct {
	typ, object, gen string
	attrs            map[string]string
	body             map[string]any
}

func (v *env) got(t *testing.T, topic string) []gotMsg {
	t.Helper()
	var out []gotMsg
	for _, m := range v.messages(topic) {
		g := gotMsg{typ: m.Attributes["eventType"], object: m.Attributes["objectId"], gen: m.Attributes["objectGeneration"], attrs: m.Attributes}
		if len(m.Data) > 0 {
			if err := json.Unmarshal(m.Data, &g.body); err != nil {
				t.Fatalf("decode payload: %v", err)
			}
		}
		out = append(out, g)
	}
	return out
}

// As in GCS, an overwrite publishes OBJECT_DELETE of the old generation
// with overwrittenByGeneration and OBJECT_FINALIZE of the new one with
// overwroteGeneration; a patch publishes OBJECT_METADATA_UPDATE.
func TestOverwriteAndUpdateNotifications(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{})
	topic := v.topic(t, "all")
	v.notify(t, storage.Notification{TopicID: topic, PayloadFormat: storage.JSONPayload})
	first := v.put(t, "o", "one", nil)
	upd, err := v.obj("o").Update(t.Context(), storage.ObjectAttrsToUpdate{CustomTime: v.secs()})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	second := v.put(t, "o", "two!", nil)
	if err := v.obj("o").Delete(t.Context()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	g1, g2 := strconv.FormatInt(first.Generation, 10), strconv.FormatInt(second.Generation, 10)
	msgs := v.got(t, topic)
	want := []struct{ typ, gen, extraKey, extraVal, metagen string }{
		{"OBJECT_FINALIZE", g1, "", "", "1"},
		{"OBJECT_METADATA_UPDATE", g1, "", "", "2"},
		{"OBJECT_DELETE", g1, "overwrittenByGeneration", g2, "2"},
		{"OBJECT_FINALIZE", g2, "overwroteGeneration", g1, "1"},
		{"OBJECT_DELETE", g2, "", "", "1"},
	}
	if len(msgs) != len(want) {
		t.Fatalf("got %d messages, want %d: %+v", len(msgs), len(want), msgs)
	}
	if v.E.Published() != int64(len(want)) {
		t.Errorf("Published() = %d, want %d", v.E.Published(), len(want))
	}
	for i, w := range want {
		m := msgs[i]
		if m.typ != w.typ || m.gen != w.gen || m.body["generation"] != w.gen || m.body["metageneration"] != w.metagen {
			t.Errorf("message %d: %s gen %s body gen %v metagen %v; want %s gen %s metagen %s",
				i, m.typ, m.gen, m.body["generation"], m.body["metageneration"], w.typ, w.gen, w.metagen)
		}
		for _, k := range []string{"overwrittenByGeneration", "overwroteGeneration"} {
			got, ok := m.attrs[k]
			if (k == w.extraKey) != ok || (ok && got != w.extraVal) {
				t.Errorf("message %d (%s): attribute %s = %q (present %v), want %q only on this event", i, m.typ, k, got, ok, w.extraVal)
			}
		}
	}
	if got := msgs[1].body["customTime"]; got == nil || got == "" {
		t.Errorf("metadata update payload lacks customTime (update returned %s)", upd.CustomTime)
	}
	if msgs[2].body["size"] != "3" || msgs[3].body["size"] != "4" {
		t.Errorf("sizes %v / %v: the DELETE carries the old object, the FINALIZE the new", msgs[2].body["size"], msgs[3].body["size"])
	}
}

// Configs honour object_name_prefix, event_types, payload_format NONE and
// custom attributes; they are listed, fetched and deleted through the API.
func TestNotificationFiltering(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{})
	tAll, tDel, tNone := v.topic(t, "all"), v.topic(t, "del"), v.topic(t, "none")
	all := v.notify(t, storage.Notification{TopicID: tAll, ObjectNamePrefix: "traces/"})
	del := v.notify(t, storage.Notification{TopicID: tDel, EventTypes: []string{storage.ObjectDeleteEvent}, PayloadFormat: storage.NoPayload})
	none := v.notify(t, storage.Notification{TopicID: tNone, EventTypes: []string{storage.ObjectFinalizeEvent, storage.ObjectMetadataUpdateEvent},
		PayloadFormat: storage.NoPayload, CustomAttributes: map[string]string{"a": "1", "b": "2"}})
	if all.PayloadFormat != storage.JSONPayload || all.TopicID != tAll || all.TopicProjectID != project {
		t.Errorf("created config %+v: want JSON_API_V1 default and the topic back", all)
	}

	v.put(t, "traces/1", "x", nil)
	v.put(t, "other/1", "x", nil)
	if err := v.obj("traces/1").Delete(t.Context()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if err := v.obj("other/1").Delete(t.Context()); err != nil {
		t.Fatalf("delete: %v", err)
	}

	summary := func(ms []gotMsg) []string {
		var out []string
		for _, m := range ms {
			out = append(out, m.typ+" "+m.object)
		}
		return out
	}
	if got, want := summary(v.got(t, tAll)), []string{"OBJECT_FINALIZE traces/1", "OBJECT_DELETE traces/1"}; !slices.Equal(got, want) {
		t.Errorf("prefix config got %v, want %v", got, want)
	}
	if got, want := summary(v.got(t, tDel)), []string{"OBJECT_DELETE traces/1", "OBJECT_DELETE other/1"}; !slices.Equal(got, want) {
		t.Errorf("delete-only config got %v, want %v", got, want)
	}
	noneMsgs := v.got(t, tNone)
	if got, want := summary(noneMsgs), []string{"OBJECT_FINALIZE traces/1", "OBJECT_FINALIZE other/1"}; !slices.Equal(got, want) {
		t.Errorf("finalize config got %v, want %v", got, want)
	}
	for _, m := range append(noneMsgs, v.got(t, tDel)...) {
		if m.body != nil || m.attrs["payloadFormat"] != "NONE" {
			t.Errorf("NONE payload: body %v, payloadFormat %q", m.body, m.attrs["payloadFormat"])
		}
	}
	for _, m := range noneMsgs {
		if m.attrs["a"] != "1" || m.attrs["b"] != "2" || m.attrs["notificationConfig"] != "projects/_/buckets/"+v.Bucket+"/notificationConfigs/"+none.ID {
			t.Errorf("attributes %v: want custom attributes and the config name", m.attrs)
		}
	}

	b := v.Client.Bucket(v.Bucket)
	list, err := b.Notifications(t.Context())
	if err != nil || len(list) != 3 || list[del.ID] == nil || list[del.ID].PayloadFormat != storage.NoPayload {
		t.Fatalf("list configs: %v, %v", list, err)
	}
	if err := b.DeleteNotification(t.Context(), del.ID); err != nil {
		t.Fatalf("delete config: %v", err)
	}
	if err := b.DeleteNotification(t.Context(), del.ID); code(err) != 404 {
		t.Errorf("delete config twice: got %v, want 404", err)
	}
	v.put(t, "x", "x", nil)
	if err := v.obj("x").Delete(t.Context()); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if n := len(v.got(t, tDel)); n != 2 {
		t.Errorf("deleted config still publishes: %d messages, want 2", n)
	}
	status, body := v.do(t, http.MethodGet, "/storage/v1/b/"+v.Bucket+"/notificationConfigs/"+all.ID, nil)
	if status != 200 {
		t.Errorf("get config: %d %s", status, body)
	}
	status, _ = v.do(t, http.MethodPost, "/storage/v1/b/"+v.Bucket+"/notificationConfigs", map[string]any{"topic": "nonsense"})
	if status != 400 {
		t.Errorf("bad topic: got %d, want 400", status)
	}
}

// A publish to a missing topic is logged and counted, and the write it
// reports on still succeeds.
func TestPublishFailureIsCounted(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{})
	v.notify(t, storage.Notification{TopicID: "missing"})
	v.put(t, "o", "x", nil)
	if v.E.Published() != 0 || v.E.PublishFailures() != 1 {
		t.Errorf("published %d failed %d, want 0 and 1", v.E.Published(), v.E.PublishFailures())
	}
}
