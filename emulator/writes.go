package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// uploadMeta is the part of an upload's metadata the fake ignores or
// parses loosely.
type uploadMeta struct {
	Name           string `json:"name"`
	Bucket         string `json:"bucket"`
	CustomTime     string `json:"customTime"`
	TemporaryHold  *bool  `json:"temporaryHold"`
	EventBasedHold *bool  `json:"eventBasedHold"`
}

// pendingUpload remembers a resumable session until its final chunk.
type pendingUpload struct {
	bucket, name string
	meta         uploadMeta
	conds        conds
}

// writeReq describes a request that creates a new generation of an object.
type writeReq struct {
	bucket, name string
	conds        conds
	meta         uploadMeta
	// wrapped: the fake answers with a rewrite response holding the object
	// under "resource".
	wrapped bool
	// xml: an XML API PUT, whose answer names the new generation in
	// x-goog-generation and x-goog-metageneration, as GCS's does.
	xml bool
}

// handleUpload serves /upload/storage/v1/b/{b}/o and /upload/resumable/{id}.
func (e *Emulator) handleUpload(w http.ResponseWriter, r *http.Request, rt route) {
	q := r.URL.Query()
	if id := q.Get("upload_id"); id != "" || rt.uploadID != "" {
		if id == "" {
			id = rt.uploadID
		}
		e.uploadChunk(w, r, id)
		return
	}
	c, err := requestConds(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	uploadType := q.Get("uploadType")
	if uploadType == "" && r.Header.Get("X-Goog-Upload-Protocol") == "resumable" {
		uploadType = "resumable"
	}
	var meta uploadMeta
	switch uploadType {
	case "multipart":
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid", "read upload: "+err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		meta, err = multipartMeta(r.Header.Get("Content-Type"), body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid", "upload metadata: "+err.Error())
			return
		}
	case "media":
		meta.CustomTime = q.Get("customTime")
	case "resumable":
		e.startResumable(w, r, rt, c)
		return
	default:
		e.fakeH.ServeHTTP(w, r)
		return
	}
	name := q.Get("name")
	if name == "" {
		name = meta.Name
	}
	e.commitWrite(w, r, writeReq{bucket: rt.bucket, name: name, conds: c, meta: meta})
}

// multipartMeta reads the JSON metadata part of a multipart upload.
func multipartMeta(contentType string, body []byte) (uploadMeta, error) {
	var m uploadMeta
	_, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return m, fmt.Errorf("content type: %w", err)
	}
	mr := multipart.NewReader(bytes.NewReader(body), params["boundary"])
	part, err := mr.NextPart()
	if err != nil {
		return m, fmt.Errorf("first part: %w", err)
	}
	if err := json.NewDecoder(part).Decode(&m); err != nil {
		return m, fmt.Errorf("decode: %w", err)
	}
	return m, nil
}

func (e *Emulator) startResumable(w http.ResponseWriter, r *http.Request, rt route, c conds) {
	var meta uploadMeta
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid", "read upload: "+err.Error())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		if len(bytes.TrimSpace(body)) > 0 {
			_ = json.Unmarshal(body, &meta) // the fake reports bad JSON itself
		}
	}
	name := r.URL.Query().Get("name")
	if name == "" {
		name = meta.Name
	}
	bucket := rt.bucket
	if meta.Bucket != "" {
		bucket = meta.Bucket
	}
	rec := e.capture(r)
	if rec.status/100 == 2 {
		if loc, err := url.Parse(rec.header.Get("Location")); err == nil {
			if id := loc.Query().Get("upload_id"); id != "" {
				e.mu.Lock()
				e.uploads[id] = pendingUpload{bucket: bucket, name: name, meta: meta, conds: c}
				e.mu.Unlock()
			}
		}
	}
	rec.copyTo(w)
}

// uploadChunk forwards a resumable chunk; the final one commits like any
// other write.
func (e *Emulator) uploadChunk(w http.ResponseWriter, r *http.Request, id string) {
	e.mu.Lock()
	p, ok := e.uploads[id]
	e.mu.Unlock()
	if !ok || !finalChunk(r.Header.Get("Content-Range")) {
		e.fakeH.ServeHTTP(w, r)
		return
	}
	e.commitWrite(w, r, writeReq{bucket: p.bucket, name: p.name, conds: p.conds, meta: p.meta})
	e.mu.Lock()
	delete(e.uploads, id)
	e.mu.Unlock()
}

// finalChunk reports whether a resumable chunk with this Content-Range
// completes the upload.
func finalChunk(cr string) bool {
	if cr == "" {
		return true
	}
	rng, total, ok := strings.Cut(strings.TrimPrefix(cr, "bytes "), "/")
	if !ok {
		return true
	}
	if total == "*" {
		return rng == "*"
	}
	if rng == "*" {
		return true
	}
	_, end, _ := strings.Cut(rng, "-")
	e, err1 := strconv.ParseInt(end, 10, 64)
	t, err2 := strconv.ParseInt(total, 10, 64)
	return err1 != nil || err2 != nil || e+1 >= t
}

// commitWrite runs a request that writes a new generation of wr.name:
// preconditions (412) first, then holds (403), then the fake, then side
// state and notifications, all before the response goes out.
func (e *Emulator) commitWrite(w http.ResponseWriter, r *http.Request, wr writeReq) {
	if wr.name == "" {
		e.fakeH.ServeHTTP(w, r) // the fake words the error
		return
	}
	unlock := e.lockObject(wr.bucket, wr.name)
	defer unlock()
	old, exists := e.current(wr.bucket, wr.name)
	if err := wr.conds.check(exists, old.base.Generation, old.st.Metageneration); err != nil {
		writeError(w, http.StatusPreconditionFailed, "conditionNotMet", err.Error())
		return
	}
	if exists {
		if msg := holdMessage(old); msg != "" {
			writeError(w, http.StatusForbidden, "forbidden", msg)
			return
		}
	}
	var ct time.Time
	if wr.meta.CustomTime != "" {
		t, err := time.Parse(time.RFC3339Nano, wr.meta.CustomTime)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("Invalid value for customTime: %q", wr.meta.CustomTime))
			return
		}
		ct = t.UTC()
	}
	rec := e.capture(r)
	if rec.status/100 != 2 {
		rec.copyTo(w)
		return
	}
	fo, wrapper, ok := writtenObject(rec, wr.wrapped)
	if !ok {
		rec.copyTo(w) // not a finished object (e.g. an intermediate chunk)
		return
	}
	b := fo.base()
	b.Bucket, b.Name = wr.bucket, wr.name
	st := e.newState(b, wr.meta, ct)
	if err := e.putObject(wr.bucket, wr.name, st); err != nil {
		e.log.Error("record object", "key", wr.name, "err", err)
	}
	base := e.baseURL(r)
	res := render(view{base: b, st: st}, base)
	e.emit(r.Context(), wr.bucket, writeEvents(old, exists, res, base)...)
	var out any = res
	if wrapper != nil {
		wrapper["resource"], _ = json.Marshal(res)
		out = wrapper
	}
	rec.header.Del("Content-Length")
	copyHeader(w.Header(), rec.header)
	if wr.xml {
		w.Header().Set("X-Goog-Generation", strconv.FormatInt(b.Generation, 10))
		w.Header().Set("X-Goog-Metageneration", strconv.FormatInt(st.Metageneration, 10))
		w.Header().Set("Last-Modified", st.Created.UTC().Format(http.TimeFormat))
	}
	writeJSON(w, rec.status, out)
}

// writtenObject extracts the new object from the fake's answer; wrapped
// answers (rewrites) hold it under "resource" and are returned for reuse.
func writtenObject(rec *recorder, wrapped bool) (fakeJSONObject, map[string]json.RawMessage, bool) {
	var fo fakeJSONObject
	var wrapper map[string]json.RawMessage
	objJSON := rec.body.Bytes()
	if wrapped {
		if err := json.Unmarshal(objJSON, &wrapper); err != nil {
			return fo, nil, false
		}
		objJSON = wrapper["resource"]
	}
	if err := json.Unmarshal(objJSON, &fo); err != nil || fo.Generation == 0 {
		return fo, nil, false
	}
	return fo, wrapper, true
}

// writeEvents are GCS's notifications for a write: with versioning off, an
// overwrite is a DELETE of the old generation plus a FINALIZE of the new,
// cross-referenced by generation.
func writeEvents(old view, exists bool, res objectResource, baseURL string) []event {
	if !exists {
		return []event{{typ: eventFinalize, obj: res}}
	}
	return []event{
		{typ: eventDelete, obj: render(old, baseURL), attrs: map[string]string{"overwrittenByGeneration": res.Generation}},
		{typ: eventFinalize, obj: res, attrs: map[string]string{"overwroteGeneration": strconv.FormatInt(old.base.Generation, 10)}},
	}
}

// newState is the side state of a freshly written generation.
func (e *Emulator) newState(b baseObject, m uploadMeta, ct time.Time) objState {
	now := e.Now()
	if ct.IsZero() {
		ct = b.CustomTime
	}
	st := objState{
		Generation: b.Generation, Metageneration: 1, Created: now, Updated: now,
		CustomTime: ct, StorageClass: b.StorageClass, ContentType: b.ContentType,
		ContentEncoding: b.ContentEncoding, ContentDisposition: b.ContentDisposition,
		ContentLanguage: b.ContentLanguage, CacheControl: b.CacheControl, Metadata: b.Metadata,
	}
	if m.TemporaryHold != nil {
		st.TemporaryHold = *m.TemporaryHold
	}
	if m.EventBasedHold != nil {
		st.EventBasedHold = *m.EventBasedHold
	} else if bs := e.bucket(b.Bucket); bs != nil {
		st.EventBasedHold = bs.defaultEventBasedHold()
	}
	return st
}

// deleteObject serves objects.delete: 404, then 412, then 403.
func (e *Emulator) deleteObject(w http.ResponseWriter, r *http.Request, rt route) {
	q := r.URL.Query()
	c, err := requestConds(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	unlock := e.lockObject(rt.bucket, rt.object)
	defer unlock()
	v, ok := e.current(rt.bucket, rt.object)
	if !ok || (q.Get("generation") != "" && q.Get("generation") != strconv.FormatInt(v.base.Generation, 10)) {
		writeError(w, http.StatusNotFound, "notFound", "No such object: "+rt.bucket+"/"+rt.object)
		return
	}
	if err := c.check(true, v.base.Generation, v.st.Metageneration); err != nil {
		writeError(w, http.StatusPreconditionFailed, "conditionNotMet", err.Error())
		return
	}
	if msg := holdMessage(v); msg != "" {
		writeError(w, http.StatusForbidden, "forbidden", msg)
		return
	}
	if err := e.deleteLocked(r.Context(), v, e.baseURL(r)); err != nil {
		writeError(w, http.StatusInternalServerError, "internalError", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// deleteLocked removes a live object and publishes its OBJECT_DELETE. The
// caller holds the object's lock and has checked preconditions and holds.
func (e *Emulator) deleteLocked(ctx context.Context, v view, baseURL string) error {
	if err := e.backend.DeleteObject(v.base.Bucket, v.base.Name); err != nil {
		return fmt.Errorf("delete %s/%s: %w", v.base.Bucket, v.base.Name, err)
	}
	if err := e.removeObject(v.base.Bucket, v.base.Name); err != nil {
		e.log.Error("forget object", "key", v.base.Name, "err", err)
	}
	e.emit(ctx, v.base.Bucket, event{typ: eventDelete, obj: render(v, baseURL)})
	return nil
}

// xmlUpload handles a PUT through the XML API (signed URLs): the
// x-goog-if-generation-match and x-goog-custom-time headers that the fake
// ignores are honoured here.
func (e *Emulator) xmlUpload(w http.ResponseWriter, r *http.Request, rt route) {
	c, err := requestConds(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	if ce := r.Header.Get("Content-Encoding"); ce != "" {
		// GCS stores the bytes as sent and records the encoding; the fake
		// would decompress a gzip body first. It takes the encoding from
		// the query instead.
		r.Header.Del("Content-Encoding")
		q := r.URL.Query()
		q.Set("contentEncoding", ce)
		r.URL.RawQuery = q.Encode()
	}
	if r.URL.Query().Get("X-Goog-Algorithm") == "" {
		// The fake serves XML PUTs only as signed-URL uploads; an
		// authenticated PUT (a bearer token, or none against an
		// emulator) is the same upload.
		q := r.URL.Query()
		q.Set("X-Goog-Algorithm", "none")
		r.URL.RawQuery = q.Encode()
	}
	e.commitWrite(w, r, writeReq{bucket: rt.bucket, name: rt.object, conds: c, xml: true,
		meta: uploadMeta{CustomTime: r.Header.Get("X-Goog-Custom-Time")}})
}
