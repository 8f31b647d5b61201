package emulator

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
)

type op int

const (
	opPassThrough op = iota
	opBucketList
	opBucketInsert
	opBucketGet
	opBucketPatch
	opBucketUpdate
	opBucketDelete
	opObjectList
	opObjectMeta
	opObjectMedia
	opObjectPatch
	opObjectUpdate
	opObjectDelete
	opObjectRewrite
	opObjectCompose
	opUpload
	opXMLUpload
	opNotifList
	opNotifInsert
	opNotifGet
	opNotifDelete
)

// route is a parsed GCS request.
type route struct {
	op        op
	fault     string // fault kind: upload, read, metadata, delete, list, or "" (matched only by "any")
	bucket    string
	object    string
	dstBucket string
	dstObject string
	notifID   string
	uploadID  string
	rewrite   bool // rewriteTo (answers a rewrite response), not copyTo
}

func unescape(s string) string {
	if u, err := url.PathUnescape(s); err == nil {
		return u
	}
	return s
}

// parseRoute classifies r by its escaped path, so object names holding
// "%2F" stay one segment.
func parseRoute(r *http.Request, publicHost string) route {
	p := r.URL.EscapedPath()
	m := r.Method
	if m == http.MethodPost && r.Header.Get("X-Http-Method-Override") == http.MethodPatch {
		m = http.MethodPatch
	}
	switch {
	case strings.HasPrefix(p, "/storage/v1/b"):
		return parseJSONRoute(strings.TrimPrefix(p, "/storage/v1/b"), m, r.URL.Query().Get("alt"))
	case strings.HasPrefix(p, "/upload/storage/v1/b/"):
		rest := strings.TrimPrefix(p, "/upload/storage/v1/b/")
		b, _, _ := strings.Cut(rest, "/")
		if m == http.MethodPost || m == http.MethodPut {
			return route{op: opUpload, fault: "upload", bucket: unescape(b)}
		}
		return route{fault: "upload"}
	case strings.HasPrefix(p, "/upload/resumable/"):
		return route{op: opUpload, fault: "upload", uploadID: unescape(strings.TrimPrefix(p, "/upload/resumable/"))}
	case strings.HasPrefix(p, "/download/storage/v1/b/"):
		b, o, _ := strings.Cut(strings.TrimPrefix(p, "/download/storage/v1/b/"), "/o/")
		return route{op: opObjectMedia, fault: "read", bucket: unescape(b), object: unescape(o)}
	case strings.HasPrefix(p, "/_internal/") || strings.HasPrefix(p, "/batch/"):
		return route{}
	}
	// XML API, path style on the public host: /{bucket}/{object}.
	b, o, ok := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if !isPublicHost(r.Host, publicHost) || !ok || b == "" || o == "" {
		if m == http.MethodGet {
			return route{fault: "list"}
		}
		return route{}
	}
	rt := route{bucket: unescape(b), object: unescape(o)}
	switch m {
	case http.MethodGet, http.MethodHead:
		rt.fault = "read"
	case http.MethodPut:
		rt.op, rt.fault = opXMLUpload, "upload"
	case http.MethodPost:
		rt.fault = "upload"
	case http.MethodDelete:
		rt.op, rt.fault = opObjectDelete, "delete"
	}
	return rt
}

// isPublicHost matches the way fakestorage routes its XML API: a
// PublicHost without a port matches any port.
func isPublicHost(host, public string) bool {
	if public == "" {
		return false
	}
	if strings.Contains(public, ":") {
		return host == public
	}
	h, _, _ := strings.Cut(host, ":")
	return h == public
}

func parseJSONRoute(p, m, alt string) route {
	p = strings.TrimPrefix(p, "/")
	if p == "" {
		switch m {
		case http.MethodGet:
			return route{op: opBucketList}
		case http.MethodPost:
			return route{op: opBucketInsert}
		}
		return route{}
	}
	b, rest, _ := strings.Cut(p, "/")
	rt := route{bucket: unescape(b)}
	switch {
	case rest == "":
		switch m {
		case http.MethodGet:
			rt.op = opBucketGet
		case http.MethodPatch:
			rt.op = opBucketPatch
		case http.MethodPut:
			rt.op = opBucketUpdate
		case http.MethodDelete:
			rt.op = opBucketDelete
		}
		return rt
	case rest == "o" || rest == "o/":
		if m == http.MethodGet {
			rt.op, rt.fault = opObjectList, "list"
		}
		return rt
	case rest == "notificationConfigs":
		switch m {
		case http.MethodGet:
			rt.op = opNotifList
		case http.MethodPost:
			rt.op = opNotifInsert
		}
		return rt
	case strings.HasPrefix(rest, "notificationConfigs/"):
		rt.notifID = unescape(strings.TrimPrefix(rest, "notificationConfigs/"))
		switch m {
		case http.MethodGet:
			rt.op = opNotifGet
		case http.MethodDelete:
			rt.op = opNotifDelete
		}
		return rt
	case strings.HasPrefix(rest, "o/"):
		return parseObjectRoute(rt, strings.TrimPrefix(rest, "o/"), m, alt)
	}
	return rt
}

func parseObjectRoute(rt route, o, m, alt string) route {
	if m == http.MethodPost {
		for _, kind := range []string{"/rewriteTo/b/", "/copyTo/b/"} {
			if src, dst, ok := strings.Cut(o, kind); ok {
				db, do, _ := strings.Cut(dst, "/o/")
				rt.object, rt.dstBucket, rt.dstObject = unescape(src), unescape(db), unescape(do)
				rt.op, rt.fault, rt.rewrite = opObjectRewrite, "upload", kind == "/rewriteTo/b/"
				return rt
			}
		}
		if d, ok := strings.CutSuffix(o, "/compose"); ok {
			rt.object, rt.op, rt.fault = unescape(d), opObjectCompose, "upload"
			return rt
		}
	}
	if strings.Contains(o, "/acl") {
		rt.object = unescape(o)
		rt.fault = "metadata"
		return rt
	}
	rt.object = unescape(o)
	switch m {
	case http.MethodGet, http.MethodHead:
		if alt == "media" || m == http.MethodHead {
			rt.op, rt.fault = opObjectMedia, "read"
		} else {
			rt.op, rt.fault = opObjectMeta, "metadata"
		}
	case http.MethodPatch:
		rt.op, rt.fault = opObjectPatch, "metadata"
	case http.MethodPut:
		rt.op, rt.fault = opObjectUpdate, "metadata"
	case http.MethodDelete:
		rt.op, rt.fault = opObjectDelete, "delete"
	}
	return rt
}

// serveHTTP dispatches: control routes, faults, then the GCS operation.
func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/_emulator/") {
		e.serveControl(w, r)
		return
	}
	if e.log.Enabled(r.Context(), slog.LevelDebug) {
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			e.log.Debug("request", "method", r.Method, "path", r.URL.EscapedPath(), "status", sw.status)
		}()
		w = sw
	}
	rt := parseRoute(r, e.opts.PublicHost)
	if err := e.checkSigned(r); err != nil {
		writeSignedError(w, err)
		return
	}
	if status, ok := e.faults.take(rt.fault); ok {
		writeError(w, status, reasonFor(status), "injected fault")
		return
	}
	switch rt.op {
	case opBucketList, opBucketGet:
		e.getBuckets(w, r, rt)
	case opBucketInsert:
		e.insertBucket(w, r)
	case opBucketPatch, opBucketUpdate:
		e.patchBucket(w, r, rt, rt.op == opBucketUpdate)
	case opBucketDelete:
		e.deleteBucket(w, r, rt)
	case opObjectList:
		e.listObjects(w, r, rt)
	case opObjectMeta:
		e.getObjectMeta(w, r, rt)
	case opObjectMedia:
		e.readObjectMedia(w, r, rt)
	case opObjectPatch, opObjectUpdate:
		e.updateObject(w, r, rt, rt.op == opObjectUpdate)
	case opObjectDelete:
		e.deleteObject(w, r, rt)
	case opObjectRewrite:
		c, err := requestConds(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid", err.Error())
			return
		}
		e.commitWrite(w, r, writeReq{bucket: rt.dstBucket, name: rt.dstObject, conds: c,
			wrapped: rt.rewrite})
	case opObjectCompose:
		c, err := requestConds(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid", err.Error())
			return
		}
		e.commitWrite(w, r, writeReq{bucket: rt.bucket, name: rt.object, conds: c})
	case opUpload:
		e.handleUpload(w, r, rt)
	case opXMLUpload:
		e.xmlUpload(w, r, rt)
	case opNotifList, opNotifInsert, opNotifGet, opNotifDelete:
		e.serveNotifications(w, r, rt)
	default:
		e.fakeH.ServeHTTP(w, r)
	}
}

// statusWriter remembers the status for the debug log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush lets streamed downloads through.
func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// recorder captures a response from the fake so it can be inspected or
// rewritten before it goes out.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (c *recorder) Header() http.Header { return c.header }
func (c *recorder) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return c.body.Write(b)
}
func (c *recorder) WriteHeader(s int) {
	if c.status == 0 {
		c.status = s
	}
}

// capture runs r through the fake and records the response.
func (e *Emulator) capture(r *http.Request) *recorder {
	rec := &recorder{header: http.Header{}}
	e.fakeH.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return rec
}

func (c *recorder) copyTo(w http.ResponseWriter) {
	copyHeader(w.Header(), c.header)
	w.WriteHeader(c.status)
	w.Write(c.body.Bytes())
}

func copyHeader(dst, src http.Header) {
	for k, vs := range src {
		dst[k] = append([]string(nil), vs...)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	data, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		data = []byte(`{"error":{"code":500,"message":"encode response"}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	w.Write(data)
	w.Write([]byte("\n"))
}

// writeError writes GCS's JSON error shape.
func writeError(w http.ResponseWriter, status int, reason, msg string) {
	type item struct {
		Domain  string `json:"domain"`
		Reason  string `json:"reason"`
		Message string `json:"message"`
	}
	body := map[string]any{"error": map[string]any{
		"code":    status,
		"message": msg,
		"errors":  []item{{Domain: "global", Reason: reason, Message: msg}},
	}}
	writeJSON(w, status, body)
}

func reasonFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "invalid"
	case http.StatusForbidden:
		return "forbidden"
	case http.StatusNotFound:
		return "notFound"
	case http.StatusPreconditionFailed:
		return "conditionNotMet"
	case http.StatusTooManyRequests:
		return "rateLimitExceeded"
	case http.StatusServiceUnavailable:
		return "backendError"
	default:
		if status >= 500 {
			return "internalError"
		}
		return "invalid"
	}
}
