package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
)

// computedBucketFields are never stored from a request: the fake or the
// emulator computes them.
var computedBucketFields = map[string]bool{
	"kind": true, "id": true, "name": true, "selfLink": true, "timeCreated": true,
	"updated": true, "metageneration": true, "etag": true, "projectNumber": true,
	"versioning": true,
}

var bucketNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*[a-z0-9]$`)

func validBucketName(name string) error {
	if !bucketNameRE.MatchString(name) {
		return fmt.Errorf("invalid bucket name %q", name)
	}
	return nil
}

func (b *bucketState) defaultEventBasedHold() bool {
	var v bool
	if raw, ok := b.Fields["defaultEventBasedHold"]; ok {
		_ = json.Unmarshal(raw, &v)
	}
	return v
}

// rules returns the bucket's lifecycle rules (already validated on write).
func (b *bucketState) rules() []lifecycleRule {
	raw, ok := b.Fields["lifecycle"]
	if !ok {
		return nil
	}
	rules, _ := parseLifecycle(raw)
	return rules
}

// overlayBucket returns the fake's bucket resource with the emulator's
// fields laid over it.
func (e *Emulator) overlayBucket(raw json.RawMessage) map[string]json.RawMessage {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil
	}
	var name string
	_ = json.Unmarshal(m["name"], &name)
	bs := e.bucket(name)
	if bs == nil {
		return m
	}
	m["metageneration"], _ = json.Marshal(strconv.FormatInt(bs.Metageneration, 10))
	m["etag"], _ = json.Marshal(etag(bs.Metageneration, bs.Metageneration))
	maps.Copy(m, bs.Fields)
	return m
}

// getBuckets serves buckets.get and buckets.list.
func (e *Emulator) getBuckets(w http.ResponseWriter, r *http.Request, rt route) {
	rec := e.capture(r)
	if rec.status != http.StatusOK {
		rec.copyTo(w)
		return
	}
	if rt.op == opBucketGet {
		writeJSON(w, http.StatusOK, e.overlayBucket(rec.body.Bytes()))
		return
	}
	var list map[string]json.RawMessage
	var items []json.RawMessage
	if json.Unmarshal(rec.body.Bytes(), &list) != nil || json.Unmarshal(list["items"], &items) != nil {
		rec.copyTo(w)
		return
	}
	out := make([]map[string]json.RawMessage, 0, len(items))
	for _, it := range items {
		out = append(out, e.overlayBucket(it))
	}
	list["items"], _ = json.Marshal(out)
	writeJSON(w, http.StatusOK, list)
}

// bucketFields decodes a bucket request body and refuses what the emulator
// cannot honour.
func bucketFields(body []byte) (map[string]json.RawMessage, error) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, fmt.Errorf("parse bucket: %w", err)
	}
	if raw, ok := f["versioning"]; ok {
		var v struct{ Enabled bool }
		_ = json.Unmarshal(raw, &v)
		if v.Enabled {
			return nil, fmt.Errorf("object versioning is not supported by this emulator")
		}
	}
	if raw, ok := f["lifecycle"]; ok {
		if _, err := parseLifecycle(raw); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// insertBucket serves buckets.insert: the fake creates the bucket, the
// emulator keeps the fields the fake drops (lifecycle, labels, ...).
func (e *Emulator) insertBucket(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "read body: "+err.Error())
		return
	}
	f, err := bucketFields(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	rec := e.capture(r)
	if rec.status/100 != 2 {
		rec.copyTo(w)
		return
	}
	var name string
	_ = json.Unmarshal(f["name"], &name)
	bs := &bucketState{Metageneration: 1, Fields: map[string]json.RawMessage{}}
	for k, v := range f {
		if !computedBucketFields[k] && string(v) != "null" {
			bs.Fields[k] = v
		}
	}
	e.mu.Lock()
	err = e.putBucketLocked(name, bs)
	e.mu.Unlock()
	if err != nil {
		e.log.Error("record bucket", "bucket", name, "err", err)
	}
	writeJSON(w, rec.status, e.overlayBucket(rec.body.Bytes()))
}

// patchBucket serves buckets.patch and buckets.update without the fake,
// whose updateBucket resets every field the request omits.
func (e *Emulator) patchBucket(w http.ResponseWriter, r *http.Request, rt route, replace bool) {
	if _, err := e.fake.Backend().GetBucket(rt.bucket); err != nil {
		writeError(w, http.StatusNotFound, "notFound", "The specified bucket does not exist.")
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "read body: "+err.Error())
		return
	}
	f, err := bucketFields(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	c, err := parseConds(r.URL.Query())
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	e.mu.Lock()
	cur := e.st.Buckets[rt.bucket]
	if cur == nil {
		cur = &bucketState{Metageneration: 1}
	}
	if (c.metaMatch != nil && *c.metaMatch != cur.Metageneration) || (c.metaNotMatch != nil && *c.metaNotMatch == cur.Metageneration) {
		e.mu.Unlock()
		writeError(w, http.StatusPreconditionFailed, "conditionNotMet", errCondNotMet.Error())
		return
	}
	next := mergeBucket(cur, f, replace)
	err = e.putBucketLocked(rt.bucket, next)
	e.mu.Unlock()
	if err != nil {
		e.log.Error("record bucket", "bucket", rt.bucket, "err", err)
	}
	get, err := http.NewRequestWithContext(r.Context(), http.MethodGet,
		"http://"+r.Host+"/storage/v1/b/"+url.PathEscape(rt.bucket), nil)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internalError", err.Error())
		return
	}
	get.Host = r.Host
	rec := e.capture(get)
	if rec.status != http.StatusOK {
		rec.copyTo(w)
		return
	}
	writeJSON(w, http.StatusOK, e.overlayBucket(rec.body.Bytes()))
}

// mergeBucket applies a patch (or, with replace, an update) to the stored
// fields; a null removes a field.
func mergeBucket(cur *bucketState, f map[string]json.RawMessage, replace bool) *bucketState {
	next := &bucketState{Metageneration: cur.Metageneration + 1, Notifications: cur.Notifications,
		Fields: map[string]json.RawMessage{}}
	if !replace {
		maps.Copy(next.Fields, cur.Fields)
	}
	for k, v := range f {
		switch {
		case computedBucketFields[k]:
		case string(v) == "null":
			delete(next.Fields, k)
		default:
			next.Fields[k] = v
		}
	}
	return next
}

// deleteBucket lets the fake delete (it refuses non-empty buckets) and
// drops the bucket's side state.
func (e *Emulator) deleteBucket(w http.ResponseWriter, r *http.Request, rt route) {
	rec := e.capture(r)
	if rec.status/100 == 2 {
		if err := e.removeBucket(rt.bucket); err != nil {
			e.log.Error("forget bucket", "bucket", rt.bucket, "err", err)
		}
	}
	rec.copyTo(w)
}
