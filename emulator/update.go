package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strconv"
	"time"
)

// updateObject serves objects.patch (replace=false) and objects.update
// (replace=true) without the fake, whose filesystem backend would rewrite
// the object under a new generation. Metadata stays editable while held.
func (e *Emulator) updateObject(w http.ResponseWriter, r *http.Request, rt route, replace bool) {
	q := r.URL.Query()
	c, err := requestConds(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", err.Error())
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", "read body: "+err.Error())
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		writeError(w, http.StatusBadRequest, "parseError", "Parse Error: "+err.Error())
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
	st, err := applyUpdate(v.st, fields, replace)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid", fmt.Sprintf("Object '%s/%s': %v", rt.bucket, rt.object, err))
		return
	}
	st.Metageneration++
	st.Updated = e.Now()
	if err := e.putObject(rt.bucket, rt.object, st); err != nil {
		e.log.Error("record object", "key", rt.object, "err", err)
	}
	res := render(view{base: v.base, st: st}, e.baseURL(r))
	e.emit(r.Context(), rt.bucket, event{typ: eventMetadataUpdate, obj: res})
	writeJSON(w, http.StatusOK, res)
}

var (
	errCustomTimeRemoved  = errors.New("customTime cannot be removed once set")
	errCustomTimeBackward = errors.New("customTime can only move forward")
)

// applyUpdate returns st with the writable fields in f applied. With
// replace (objects.update) absent fields are reset, as GCS does.
func applyUpdate(st objState, f map[string]json.RawMessage, replace bool) (objState, error) {
	if replace {
		st.ContentType, st.ContentEncoding, st.ContentDisposition = "", "", ""
		st.ContentLanguage, st.CacheControl = "", ""
		st.TemporaryHold, st.EventBasedHold = false, false
		st.Metadata = nil
		if _, ok := f["customTime"]; !ok && !st.CustomTime.IsZero() {
			return st, errCustomTimeRemoved
		}
	}
	strs := map[string]*string{
		"contentType": &st.ContentType, "contentEncoding": &st.ContentEncoding,
		"contentDisposition": &st.ContentDisposition, "contentLanguage": &st.ContentLanguage,
		"cacheControl": &st.CacheControl,
	}
	for k, p := range strs {
		if raw, ok := f[k]; ok {
			var s *string
			if err := json.Unmarshal(raw, &s); err != nil {
				return st, fmt.Errorf("invalid %s: %w", k, err)
			}
			*p = ""
			if s != nil {
				*p = *s
			}
		}
	}
	bools := map[string]*bool{"temporaryHold": &st.TemporaryHold, "eventBasedHold": &st.EventBasedHold}
	for k, p := range bools {
		if raw, ok := f[k]; ok {
			var b *bool
			if err := json.Unmarshal(raw, &b); err != nil {
				return st, fmt.Errorf("invalid %s: %w", k, err)
			}
			*p = b != nil && *b
		}
	}
	if raw, ok := f["metadata"]; ok {
		var m map[string]*string
		if err := json.Unmarshal(raw, &m); err != nil {
			return st, fmt.Errorf("invalid metadata: %w", err)
		}
		next := map[string]string{}
		if !replace && m != nil {
			maps.Copy(next, st.Metadata)
		}
		for k, v := range m {
			if v == nil {
				delete(next, k)
			} else {
				next[k] = *v
			}
		}
		st.Metadata = next
		if len(next) == 0 {
			st.Metadata = nil
		}
	}
	if raw, ok := f["customTime"]; ok {
		ct, err := nextCustomTime(st.CustomTime, raw)
		if err != nil {
			return st, err
		}
		st.CustomTime = ct
	}
	return st, nil
}

// nextCustomTime enforces GCS's rule: customTime, once set, cannot be
// removed or moved earlier; the same or a later value is accepted.
func nextCustomTime(cur time.Time, raw json.RawMessage) (time.Time, error) {
	var s *string
	if err := json.Unmarshal(raw, &s); err != nil {
		return cur, fmt.Errorf("invalid customTime: %w", err)
	}
	if s == nil || *s == "" {
		if cur.IsZero() {
			return cur, nil
		}
		return cur, errCustomTimeRemoved
	}
	t, err := time.Parse(time.RFC3339Nano, *s)
	if err != nil {
		return cur, fmt.Errorf("invalid customTime %q: must be RFC 3339", *s)
	}
	t = t.UTC()
	if !cur.IsZero() && t.Before(cur) {
		return cur, fmt.Errorf("%w: requested %s is earlier than current %s",
			errCustomTimeBackward, t.Format(time.RFC3339Nano), cur.Format(time.RFC3339Nano))
	}
	return t, nil
}
