package emulator

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/fsouza/fake-gcs-server/fakestorage"
)

// baseObject is what the fake knows about an object: content facts plus the
// metadata recorded at upload time.
type baseObject struct {
	Bucket             string
	Name               string
	Generation         int64
	Size               int64
	Md5Hash            string
	Crc32c             string
	StorageClass       string
	ContentType        string
	ContentEncoding    string
	ContentDisposition string
	ContentLanguage    string
	CacheControl       string
	Metadata           map[string]string
	CustomTime         time.Time
	Created            time.Time // real time, from the fake
}

func baseFromAttrs(a fakestorage.ObjectAttrs) baseObject {
	return baseObject{
		Bucket: a.BucketName, Name: a.Name, Generation: a.Generation, Size: a.Size,
		Md5Hash: a.Md5Hash, Crc32c: a.Crc32c, StorageClass: a.StorageClass,
		ContentType: a.ContentType, ContentEncoding: a.ContentEncoding,
		ContentDisposition: a.ContentDisposition, ContentLanguage: a.ContentLanguage,
		CacheControl: a.CacheControl, Metadata: a.Metadata, CustomTime: a.CustomTime,
		Created: a.Created,
	}
}

// fakeJSONObject is the subset of the fake's object resource we read back.
type fakeJSONObject struct {
	Bucket             string            `json:"bucket"`
	Name               string            `json:"name"`
	Generation         int64             `json:"generation,string"`
	Size               int64             `json:"size,string"`
	Md5Hash            string            `json:"md5Hash"`
	Crc32c             string            `json:"crc32c"`
	StorageClass       string            `json:"storageClass"`
	ContentType        string            `json:"contentType"`
	ContentEncoding    string            `json:"contentEncoding"`
	ContentDisposition string            `json:"contentDisposition"`
	ContentLanguage    string            `json:"contentLanguage"`
	CacheControl       string            `json:"cacheControl"`
	Metadata           map[string]string `json:"metadata"`
	CustomTime         string            `json:"customTime"`
	TimeCreated        string            `json:"timeCreated"`
}

func (f fakeJSONObject) base() baseObject {
	ct, _ := time.Parse(time.RFC3339Nano, f.CustomTime)
	created, _ := time.Parse(time.RFC3339Nano, f.TimeCreated)
	return baseObject{
		Bucket: f.Bucket, Name: f.Name, Generation: f.Generation, Size: f.Size,
		Md5Hash: f.Md5Hash, Crc32c: f.Crc32c, StorageClass: f.StorageClass,
		ContentType: f.ContentType, ContentEncoding: f.ContentEncoding,
		ContentDisposition: f.ContentDisposition, ContentLanguage: f.ContentLanguage,
		CacheControl: f.CacheControl, Metadata: f.Metadata, CustomTime: ct, Created: created,
	}
}

// adoptState is the state of an object the emulator did not see being
// written: metageneration 1, created at the fake's time moved onto the
// emulator clock (or at now, if the fake has no time).
func adoptState(b baseObject, offset time.Duration, now time.Time) objState {
	created := now
	if !b.Created.IsZero() {
		created = b.Created.Add(offset).UTC()
	}
	return objState{
		Generation: b.Generation, Metageneration: 1, Created: created, Updated: created,
		CustomTime: b.CustomTime, StorageClass: b.StorageClass, ContentType: b.ContentType,
		ContentEncoding: b.ContentEncoding, ContentDisposition: b.ContentDisposition,
		ContentLanguage: b.ContentLanguage, CacheControl: b.CacheControl, Metadata: b.Metadata,
	}
}

// view is one live object: the fake's facts plus the emulator's state.
type view struct {
	base baseObject
	st   objState
}

func (v view) held() bool { return v.st.TemporaryHold || v.st.EventBasedHold }

// current reads bucket/name from the fake and joins it with the side state.
// Callers that act on the result hold the object's lock.
func (e *Emulator) current(bucket, name string) (view, bool) {
	so, err := e.fake.GetObjectStreaming(bucket, name)
	if err != nil {
		return view{}, false
	}
	so.Close()
	b := baseFromAttrs(so.ObjectAttrs)
	b.Bucket, b.Name = bucket, name
	return e.join(b), true
}

// join attaches the side state to b, adopting b if the state is missing or
// is for another generation.
func (e *Emulator) join(b baseObject) view {
	st := e.objectState(b.Bucket, b.Name)
	if st == nil || st.Generation != b.Generation {
		return view{base: b, st: adoptState(b, time.Duration(e.offset.Load()), e.Now())}
	}
	return view{base: b, st: *st}
}

// objectResource is a GCS JSON API object resource, as returned by the API
// and carried in JSON_API_V1 notification payloads.
type objectResource struct {
	Kind                    string            `json:"kind"`
	ID                      string            `json:"id"`
	SelfLink                string            `json:"selfLink"`
	MediaLink               string            `json:"mediaLink"`
	Name                    string            `json:"name"`
	Bucket                  string            `json:"bucket"`
	Generation              string            `json:"generation"`
	Metageneration          string            `json:"metageneration"`
	ContentType             string            `json:"contentType,omitempty"`
	ContentEncoding         string            `json:"contentEncoding,omitempty"`
	ContentDisposition      string            `json:"contentDisposition,omitempty"`
	ContentLanguage         string            `json:"contentLanguage,omitempty"`
	CacheControl            string            `json:"cacheControl,omitempty"`
	StorageClass            string            `json:"storageClass"`
	Size                    string            `json:"size"`
	Md5Hash                 string            `json:"md5Hash,omitempty"`
	Crc32c                  string            `json:"crc32c,omitempty"`
	Etag                    string            `json:"etag"`
	TimeCreated             string            `json:"timeCreated"`
	Updated                 string            `json:"updated"`
	TimeStorageClassUpdated string            `json:"timeStorageClassUpdated"`
	CustomTime              string            `json:"customTime,omitempty"`
	TemporaryHold           bool              `json:"temporaryHold"`
	EventBasedHold          bool              `json:"eventBasedHold"`
	Metadata                map[string]string `json:"metadata,omitempty"`
}

// gcsTime is the timestamp layout GCS uses in resources.
const gcsTime = "2006-01-02T15:04:05.000Z07:00"

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(gcsTime)
}

// etag mimics GCS: base64 of a protobuf holding generation (field 1) and
// metageneration (field 2), so it changes on every metadata update.
func etag(gen, metagen int64) string {
	b := []byte{0x08}
	b = binary.AppendUvarint(b, uint64(gen))
	b = append(b, 0x10)
	b = binary.AppendUvarint(b, uint64(metagen))
	return base64.StdEncoding.EncodeToString(b)
}

// render builds the object resource; baseURL is scheme://host for links.
func render(v view, baseURL string) objectResource {
	b, s := v.base, v.st
	gen := strconv.FormatInt(b.Generation, 10)
	path := "/b/" + url.PathEscape(b.Bucket) + "/o/" + url.PathEscape(b.Name)
	sc := s.StorageClass
	if sc == "" {
		sc = b.StorageClass
	}
	if sc == "" {
		sc = "STANDARD"
	}
	return objectResource{
		Kind:                    "storage#object",
		ID:                      b.Bucket + "/" + b.Name + "/" + gen,
		SelfLink:                baseURL + "/storage/v1" + path,
		MediaLink:               baseURL + "/download/storage/v1" + path + "?generation=" + gen + "&alt=media",
		Name:                    b.Name,
		Bucket:                  b.Bucket,
		Generation:              gen,
		Metageneration:          strconv.FormatInt(s.Metageneration, 10),
		ContentType:             s.ContentType,
		ContentEncoding:         s.ContentEncoding,
		ContentDisposition:      s.ContentDisposition,
		ContentLanguage:         s.ContentLanguage,
		CacheControl:            s.CacheControl,
		StorageClass:            sc,
		Size:                    strconv.FormatInt(b.Size, 10),
		Md5Hash:                 b.Md5Hash,
		Crc32c:                  b.Crc32c,
		Etag:                    etag(b.Generation, s.Metageneration),
		TimeCreated:             formatTime(s.Created),
		Updated:                 formatTime(s.Updated),
		TimeStorageClassUpdated: formatTime(s.Created),
		CustomTime:              formatTime(s.CustomTime),
		TemporaryHold:           s.TemporaryHold,
		EventBasedHold:          s.EventBasedHold,
		Metadata:                s.Metadata,
	}
}

// baseURL is the scheme://host links in resources point at.
func (e *Emulator) baseURL(r *http.Request) string {
	if r != nil && r.Host != "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		return scheme + "://" + r.Host
	}
	if e.opts.PublicHost != "" {
		return "http://" + e.opts.PublicHost
	}
	return "https://storage.googleapis.com"
}

// getObjectMeta answers objects.get (alt=json) from the joined view.
func (e *Emulator) getObjectMeta(w http.ResponseWriter, r *http.Request, rt route) {
	v, ok := e.current(rt.bucket, rt.object)
	if !ok {
		writeError(w, http.StatusNotFound, "notFound", "No such object: "+rt.bucket+"/"+rt.object)
		return
	}
	q := r.URL.Query()
	if g := q.Get("generation"); g != "" && g != strconv.FormatInt(v.base.Generation, 10) {
		writeError(w, http.StatusNotFound, "notFound", "No such object: "+rt.bucket+"/"+rt.object)
		return
	}
	c, err := requestConds(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	if err := c.check(true, v.base.Generation, v.st.Metageneration); err != nil {
		writeError(w, http.StatusPreconditionFailed, "conditionNotMet", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, render(v, e.baseURL(r)))
}

// readObjectMedia checks read preconditions, then lets the fake stream.
func (e *Emulator) readObjectMedia(w http.ResponseWriter, r *http.Request, rt route) {
	c, err := requestConds(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	if !c.empty() {
		v, ok := e.current(rt.bucket, rt.object)
		if ok {
			if err := c.check(true, v.base.Generation, v.st.Metageneration); err != nil {
				writeError(w, http.StatusPreconditionFailed, "conditionNotMet", err.Error())
				return
			}
		}
	}
	e.fakeH.ServeHTTP(w, r)
}

// listObjects lets the fake list (prefix, delimiter, paging) and renders
// each item with the side state.
func (e *Emulator) listObjects(w http.ResponseWriter, r *http.Request, rt route) {
	rec := e.capture(r)
	if rec.status != http.StatusOK {
		rec.copyTo(w)
		return
	}
	var resp struct {
		Kind          string           `json:"kind"`
		Items         []fakeJSONObject `json:"items"`
		Prefixes      []string         `json:"prefixes,omitempty"`
		NextPageToken string           `json:"nextPageToken,omitempty"`
	}
	if err := json.Unmarshal(rec.body.Bytes(), &resp); err != nil {
		writeError(w, http.StatusInternalServerError, "internalError", "list objects: decode fake response: "+err.Error())
		return
	}
	out := struct {
		Kind          string           `json:"kind"`
		Items         []objectResource `json:"items,omitempty"`
		Prefixes      []string         `json:"prefixes,omitempty"`
		NextPageToken string           `json:"nextPageToken,omitempty"`
	}{Kind: "storage#objects", Prefixes: resp.Prefixes, NextPageToken: resp.NextPageToken}
	base := e.baseURL(r)
	for _, it := range resp.Items {
		b := it.base()
		if b.Bucket == "" {
			b.Bucket = rt.bucket
		}
		out.Items = append(out.Items, render(e.join(b), base))
	}
	writeJSON(w, http.StatusOK, out)
}
