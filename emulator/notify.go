package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"google.golang.org/api/option"
)

// Event types GCS publishes.
const (
	eventFinalize       = "OBJECT_FINALIZE"
	eventMetadataUpdate = "OBJECT_METADATA_UPDATE"
	eventDelete         = "OBJECT_DELETE"
	eventArchive        = "OBJECT_ARCHIVE"
)

// notificationConfig is the GCS notification resource.
type notificationConfig struct {
	Kind             string            `json:"kind"`
	ID               string            `json:"id"`
	SelfLink         string            `json:"selfLink,omitempty"`
	Topic            string            `json:"topic"`
	EventTypes       []string          `json:"event_types,omitempty"`
	ObjectNamePrefix string            `json:"object_name_prefix,omitempty"`
	PayloadFormat    string            `json:"payload_format"`
	CustomAttributes map[string]string `json:"custom_attributes,omitempty"`
	Etag             string            `json:"etag"`
}

// event is one change to publish.
type event struct {
	typ   string
	obj   objectResource
	attrs map[string]string // overwroteGeneration / overwrittenByGeneration
}

// splitTopic accepts "//pubsub.googleapis.com/projects/P/topics/T" and
// "projects/P/topics/T".
func splitTopic(topic string) (project, id string, err error) {
	parts := strings.Split(strings.TrimPrefix(topic, "//pubsub.googleapis.com/"), "/")
	if len(parts) != 4 || parts[0] != "projects" || parts[2] != "topics" || parts[1] == "" || parts[3] == "" {
		return "", "", fmt.Errorf("invalid topic %q: want //pubsub.googleapis.com/projects/P/topics/T", topic)
	}
	return parts[1], parts[3], nil
}

func (e *Emulator) serveNotifications(w http.ResponseWriter, r *http.Request, rt route) {
	if _, err := e.fake.Backend().GetBucket(rt.bucket); err != nil {
		writeError(w, http.StatusNotFound, "notFound", "The specified bucket does not exist.")
		return
	}
	switch rt.op {
	case opNotifInsert:
		e.insertNotification(w, r, rt)
	case opNotifList:
		items := []notificationConfig{}
		if bs := e.bucket(rt.bucket); bs != nil {
			items = append(items, bs.Notifications...)
		}
		writeJSON(w, http.StatusOK, map[string]any{"kind": "storage#notifications", "items": items})
	case opNotifGet, opNotifDelete:
		n, ok := e.takeNotification(rt.bucket, rt.notifID, rt.op == opNotifDelete)
		switch {
		case !ok:
			writeError(w, http.StatusNotFound, "notFound", "Notification configuration not found: "+rt.notifID)
		case rt.op == opNotifGet:
			writeJSON(w, http.StatusOK, n)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
	}
}

// takeNotification finds a config by ID and, with remove, deletes it
// (bumping the bucket's metageneration, as GCS does).
func (e *Emulator) takeNotification(bucket, id string, remove bool) (notificationConfig, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	bs := e.st.Buckets[bucket]
	if bs == nil {
		return notificationConfig{}, false
	}
	i := slices.IndexFunc(bs.Notifications, func(n notificationConfig) bool { return n.ID == id })
	if i < 0 {
		return notificationConfig{}, false
	}
	n := bs.Notifications[i]
	if remove {
		next := *bs
		next.Notifications = slices.Delete(slices.Clone(bs.Notifications), i, i+1)
		next.Metageneration++
		if err := e.putBucketLocked(bucket, &next); err != nil {
			e.log.Error("record bucket", "bucket", bucket, "err", err)
		}
	}
	return n, true
}

func (e *Emulator) insertNotification(w http.ResponseWriter, r *http.Request, rt route) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "read body: "+err.Error())
		return
	}
	var n notificationConfig
	if err := json.Unmarshal(body, &n); err != nil {
		writeError(w, http.StatusBadRequest, "parseError", "Parse Error: "+err.Error())
		return
	}
	project, topic, err := splitTopic(n.Topic)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	n.Topic = "//pubsub.googleapis.com/projects/" + project + "/topics/" + topic
	switch n.PayloadFormat {
	case "":
		n.PayloadFormat = "JSON_API_V1"
	case "JSON_API_V1", "NONE":
	default:
		writeError(w, http.StatusBadRequest, "invalid", "Invalid payload_format: "+n.PayloadFormat)
		return
	}
	for _, t := range n.EventTypes {
		if !slices.Contains([]string{eventFinalize, eventMetadataUpdate, eventDelete, eventArchive}, t) {
			writeError(w, http.StatusBadRequest, "invalid", "Invalid event type: "+t)
			return
		}
	}
	if len(n.CustomAttributes) > 10 {
		writeError(w, http.StatusBadRequest, "invalid", "At most 10 custom attributes are allowed")
		return
	}
	link := e.baseURL(r) + "/storage/v1/b/" + url.PathEscape(rt.bucket) + "/notificationConfigs/"
	n, ok := e.addNotification(rt.bucket, n, link)
	if !ok {
		writeError(w, http.StatusBadRequest, "invalid", "A bucket may have at most 100 notification configurations")
		return
	}
	writeJSON(w, http.StatusOK, n)
}

// addNotification stores n under the next ID; false if the bucket is full.
func (e *Emulator) addNotification(bucket string, n notificationConfig, link string) (notificationConfig, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	bs := e.st.Buckets[bucket]
	if bs == nil {
		bs = &bucketState{Metageneration: 1}
	}
	if len(bs.Notifications) >= 100 {
		return n, false
	}
	id := e.st.NextNotificationID + 1
	if err := e.appendLocked(record{Op: "nid", NID: id}); err != nil {
		e.log.Error("record notification id", "err", err)
	}
	n.Kind = "storage#notification"
	n.ID = strconv.FormatInt(id, 10)
	n.Etag = n.ID
	n.SelfLink = link + n.ID
	next := *bs
	next.Notifications = append(slices.Clone(bs.Notifications), n)
	next.Metageneration++
	if err := e.putBucketLocked(bucket, &next); err != nil {
		e.log.Error("record bucket", "bucket", bucket, "err", err)
	}
	return n, true
}

// emit publishes evs to every matching notification config of bucket and
// returns once each publish has succeeded or failed, so a response sent
// after emit implies its notifications are in Pub/Sub.
func (e *Emulator) emit(ctx context.Context, bucket string, evs ...event) {
	bs := e.bucket(bucket)
	if bs == nil || len(bs.Notifications) == 0 {
		return
	}
	ctx = context.WithoutCancel(ctx) // the change is committed; publish it
	eventTime := e.Now().Format("2006-01-02T15:04:05.000000Z07:00")
	for _, ev := range evs {
		for _, n := range bs.Notifications {
			if len(n.EventTypes) > 0 && !slices.Contains(n.EventTypes, ev.typ) {
				continue
			}
			if !strings.HasPrefix(ev.obj.Name, n.ObjectNamePrefix) {
				continue
			}
			data, attrs := message(bucket, n, ev, eventTime)
			if err := e.pub.publish(ctx, n.Topic, data, attrs); err != nil {
				e.log.Error("publish notification", "notification", n.ID, "event", ev.typ,
					"key", ev.obj.Name, "generation", ev.obj.Generation, "err", err)
			}
		}
	}
}

// message builds a notification exactly as GCS does.
func message(bucket string, n notificationConfig, ev event, eventTime string) ([]byte, map[string]string) {
	attrs := map[string]string{}
	for k, v := range n.CustomAttributes {
		attrs[k] = v
	}
	attrs["notificationConfig"] = "projects/_/buckets/" + bucket + "/notificationConfigs/" + n.ID
	attrs["eventType"] = ev.typ
	attrs["payloadFormat"] = n.PayloadFormat
	attrs["bucketId"] = bucket
	attrs["objectId"] = ev.obj.Name
	attrs["objectGeneration"] = ev.obj.Generation
	attrs["eventTime"] = eventTime
	for k, v := range ev.attrs {
		attrs[k] = v
	}
	if n.PayloadFormat == "NONE" {
		return nil, attrs
	}
	data, _ := json.Marshal(ev.obj)
	return data, attrs
}

// publisher publishes synchronously through cached Pub/Sub clients, or
// through fn when it is set.
type publisher struct {
	opts []option.ClientOption
	fn   func(ctx context.Context, topic string, data []byte, attrs map[string]string) error
	log  *slog.Logger

	mu      sync.Mutex
	clients map[string]*pubsub.Client
	topics  map[string]*pubsub.Publisher

	published atomic.Int64
	failed    atomic.Int64
}

const publishTimeout = 10 * time.Second

func newPublisher(opts []option.ClientOption, fn func(context.Context, string, []byte, map[string]string) error, log *slog.Logger) *publisher {
	return &publisher{opts: opts, fn: fn, log: log, clients: map[string]*pubsub.Client{}, topics: map[string]*pubsub.Publisher{}}
}

func (p *publisher) topic(ctx context.Context, topic string) (*pubsub.Publisher, error) {
	project, id, err := splitTopic(topic)
	if err != nil {
		return nil, err
	}
	name := "projects/" + project + "/topics/" + id
	p.mu.Lock()
	defer p.mu.Unlock()
	if t, ok := p.topics[name]; ok {
		return t, nil
	}
	c, ok := p.clients[project]
	if !ok {
		// The client outlives this publish, so it must not inherit its deadline.
		c, err = pubsub.NewClient(context.WithoutCancel(ctx), project, p.opts...)
		if err != nil {
			return nil, fmt.Errorf("pubsub client for %s: %w", project, err)
		}
		p.clients[project] = c
	}
	t := c.Publisher(name)
	// One message per bundle, sent at once: the caller waits for each.
	t.PublishSettings.CountThreshold = 1
	t.PublishSettings.DelayThreshold = time.Millisecond
	p.topics[name] = t
	return t, nil
}

func (p *publisher) publish(ctx context.Context, topic string, data []byte, attrs map[string]string) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	var err error
	if p.fn != nil {
		err = p.fn(ctx, topic, data, attrs)
	} else {
		var t *pubsub.Publisher
		if t, err = p.topic(ctx, topic); err == nil {
			_, err = t.Publish(ctx, &pubsub.Message{Data: data, Attributes: attrs}).Get(ctx)
		}
	}
	if err != nil {
		p.failed.Add(1)
		return fmt.Errorf("publish to %s: %w", topic, err)
	}
	p.published.Add(1)
	return nil
}

func (p *publisher) close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, t := range p.topics {
		t.Stop()
	}
	var errs []error
	for _, c := range p.clients {
		errs = append(errs, c.Close())
	}
	p.topics, p.clients = map[string]*pubsub.Publisher{}, map[string]*pubsub.Client{}
	return errors.Join(errs...)
}

// Published reports how many notifications were published successfully
// since New. A caller can wait until its consumer has seen that many.
func (e *Emulator) Published() int64 { return e.pub.published.Load() }

// PublishFailures reports how many notification publishes failed (each is
// also logged).
func (e *Emulator) PublishFailures() int64 { return e.pub.failed.Load() }
