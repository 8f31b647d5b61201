package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
)

func (s *Server) routeTraces() {
	s.handle("POST /v1/canvases/{canvasID}/traces", RoleExecutor, s.saveTrace)
	s.handle("GET /v1/canvases/{canvasID}/traces", RoleEditor, s.searchTraces)
	s.handle("GET /v1/canvases/{canvasID}/traces/{traceID}", RoleEditor, s.getTrace)
	s.handle("GET /v1/canvases/{canvasID}/toplevels/{tlid}/traces", RoleEditor, s.listToplevel)
	s.handle("POST /v1/canvases/{canvasID}/recent-traces", RoleEditor, s.recentTraces)
	s.handle("GET /v1/traces/{traceID}", RoleAdmin, s.findTrace)
}

// jsonStamp is the API's timestamp: RFC 3339 UTC with milliseconds.
const jsonStamp = "2006-01-02T15:04:05.000Z07:00"

// stamp is a time that JSON renders as RFC 3339 UTC with milliseconds and
// msgpack as a timestamp extension (the API's conventions).
type stamp time.Time

func (t stamp) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format(jsonStamp) + `"`), nil
}

func (t stamp) EncodeMsgpack(e *msgpack.Encoder) error { return e.EncodeTime(time.Time(t)) }

// generation is an object generation: a decimal string in JSON (64-bit), a
// native int in msgpack.
type generation int64

func (g generation) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(g), 10) + `"`), nil
}

// appendSummariesJSON appends a list as the API's JSON array of
// {"traceID","timestamp","rootTLID","held","keptBecause","latestFor",
// "expiresAfter"}, without reflection.
func appendSummariesJSON(b []byte, list []traces.Summary) []byte {
	b = append(b, '[')
	for i, x := range list {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"traceID":"`...)
		b, _ = x.ID.AppendText(b)
		b = append(b, `","timestamp":"`...)
		b = x.Timestamp.UTC().AppendFormat(b, jsonStamp)
		b = append(b, `","rootTLID":"`...)
		b = strconv.AppendUint(b, uint64(x.RootTLID), 10)
		b = append(b, `","held":`...)
		b = strconv.AppendBool(b, x.Held)
		b = append(b, `,"keptBecause":[`...)
		for j, k := range x.Kept.KeptBecause(x.Held) {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(append(append(b, '"'), k...), '"')
		}
		b = append(b, `],"latestFor":[`...)
		for j, t := range x.Kept.LatestFor {
			if j > 0 {
				b = append(b, ',')
			}
			b = append(strconv.AppendUint(append(b, '"'), uint64(t), 10), '"')
		}
		b = append(b, `],"expiresAfter":`...)
		if x.Kept.ExpiresAfter.IsZero() {
			b = append(b, "null"...)
		} else {
			b = append(x.Kept.ExpiresAfter.UTC().AppendFormat(append(b, '"'), jsonStamp), '"')
		}
		b = append(b, '}')
	}
	return append(b, ']')
}

func canvasParam(r *http.Request) (traces.CanvasID, error) {
	return traces.ParseCanvasID(r.PathValue("canvasID"))
}

func traceParams(r *http.Request) (traces.CanvasID, traces.TraceID, error) {
	c, err := canvasParam(r)
	if err != nil {
		return c, traces.TraceID{}, err
	}
	id, err := traces.ParseTraceID(r.PathValue("traceID"))
	return c, id, err
}

func (s *Server) saveTrace(w http.ResponseWriter, r *http.Request) error {
	c, err := canvasParam(r)
	if err != nil {
		return err
	}
	imp, err := importMode(r)
	if err != nil {
		return err
	}
	in, err := s.readReceived(r)
	if err != nil {
		return err
	}
	t, err := traces.DecodeTrace(in.body, in.json, s.limits)
	if err != nil {
		return err
	}
	var rec tracestore.Received
	if !in.json {
		rec = tracestore.Received{Doc: in.body, Gzip: in.gzip}
	}
	var saved tracestore.Saved
	if imp {
		saved, err = s.svc.Import(r.Context(), c, t)
	} else {
		saved, err = s.svc.SaveReceived(r.Context(), c, t, rec)
	}
	if err != nil {
		return err
	}
	status := http.StatusOK
	if saved.Created {
		status = http.StatusCreated
	}
	respondSaved(w, r, status, c, saved)
	return nil
}

// respondSaved answers a save (or a finalize) with its Location and
// {"traceID","generation"}: JSON written by hand, as this answer goes out
// once per save.
func respondSaved(w http.ResponseWriter, r *http.Request, status int, c traces.CanvasID, saved tracestore.Saved) {
	w.Header().Set("Location", "/v1/canvases/"+c.String()+"/traces/"+saved.ID.String())
	if wantsMsgpack(r) {
		respond(w, r, status, struct {
			TraceID    traces.TraceID `json:"traceID" msgpack:"traceID"`
			Generation generation     `json:"generation" msgpack:"generation"`
		}{saved.ID, generation(saved.Generation)})
		return
	}
	b := make([]byte, 0, 96)
	b = append(b, `{"traceID":"`...)
	b, _ = saved.ID.AppendText(b)
	b = append(b, `","generation":"`...)
	b = strconv.AppendInt(b, saved.Generation, 10)
	rawResponse(w, status, ctJSON, append(b, "\"}\n"...))
}

func (s *Server) getTrace(w http.ResponseWriter, r *http.Request) error {
	c, id, err := traceParams(r)
	if err != nil {
		return err
	}
	read, err := s.svc.Get(r.Context(), c, id)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", `"`+strconv.FormatInt(read.Generation, 10)+`"`)
	setKeptHeaders(w.Header(), read.Record.Held, read.Kept)
	if wantsMsgpack(r) {
		rawResponse(w, http.StatusOK, ctMsgpack, traces.AppendTraceMsgpack(nil, read.Trace))
		return nil
	}
	b, err := traces.AppendTraceJSON(nil, read.Trace)
	if err != nil {
		return err
	}
	rawResponse(w, http.StatusOK, ctJSON, b)
	return nil
}

// Why a read trace is still stored travels in headers, as its generation
// does (ETag): the body is the trace document, which callers send back
// when they replace it.
const (
	headerKeptBecause  = "X-Kept-Because"  // "latest, recent, held", a subset; empty when none
	headerLatestFor    = "X-Latest-For"    // the tlids it is among the latest of, when any
	headerExpiresAfter = "X-Expires-After" // RFC 3339; absent while held or latest
)

func setKeptHeaders(h http.Header, held bool, k traces.Kept) {
	h.Set(headerKeptBecause, strings.Join(k.KeptBecause(held), ", "))
	if len(k.LatestFor) > 0 {
		tl := make([]string, len(k.LatestFor))
		for i, t := range k.LatestFor {
			tl[i] = t.String()
		}
		h.Set(headerLatestFor, strings.Join(tl, ", "))
	}
	if !k.ExpiresAfter.IsZero() {
		h.Set(headerExpiresAfter, k.ExpiresAfter.UTC().Format(jsonStamp))
	}
}

func (s *Server) listToplevel(w http.ResponseWriter, r *http.Request) error {
	c, err := canvasParam(r)
	if err != nil {
		return err
	}
	tlid, err := traces.ParseTLID("tlid", r.PathValue("tlid"))
	if err != nil {
		return err
	}
	limit := tracestore.DefaultListLimit
	if v := r.URL.Query().Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil {
			return traces.Invalid("limit", "must be an integer between 1 and %d", tracestore.MaxListLimit)
		}
	}
	list, err := s.svc.Recent(r.Context(), c, tlid, limit)
	if err != nil {
		return err
	}
	if !wantsMsgpack(r) {
		b := append(make([]byte, 0, 64+len(list)*128), `{"traces":`...)
		b = append(appendSummariesJSON(b, list), "}\n"...)
		rawResponse(w, http.StatusOK, ctJSON, b)
		return nil
	}
	rawResponse(w, http.StatusOK, ctMsgpack, traces.AppendTraceListMsgpack(make([]byte, 0, 16+len(list)*80), list))
	return nil
}

func (s *Server) recentTraces(w http.ResponseWriter, r *http.Request) error {
	c, err := canvasParam(r)
	if err != nil {
		return err
	}
	body, isJSON, err := s.readBody(r)
	if err != nil {
		return err
	}
	var tlids []traces.TLID
	limit := tracestore.DefaultListLimit
	err = traces.DecodeFields(body, isJSON, s.limits, map[string]func(*traces.Reader, string) error{
		"tlids": func(rd *traces.Reader, f string) (err error) {
			tlids, err = rd.TLIDs(f, tracestore.MaxBatchTLIDs)
			return err
		},
		"limit": func(rd *traces.Reader, f string) error {
			n, err := rd.Int(f)
			limit = int(n)
			return err
		},
	})
	if err != nil {
		return err
	}
	if len(tlids) == 0 {
		return traces.Invalid("tlids", "required: at least one tlid")
	}
	m, err := s.svc.RecentMany(r.Context(), c, tlids, limit)
	if err != nil {
		return err
	}
	if !wantsMsgpack(r) {
		// Hand-written: the editor asks for hundreds of toplevels at once,
		// and reflection-driven encoding of thousands of items cost more
		// than the query.
		n := 0
		for _, list := range m {
			n += len(list)
		}
		b := append(make([]byte, 0, 64+len(m)*32+n*128), `{"toplevels":{`...)
		first := true
		for tlid, list := range m {
			if !first {
				b = append(b, ',')
			}
			first = false
			b = append(b, '"')
			b = strconv.AppendUint(b, uint64(tlid), 10)
			b = append(b, `":`...)
			b = appendSummariesJSON(b, list)
		}
		b = append(b, "}}\n"...)
		rawResponse(w, http.StatusOK, ctJSON, b)
		return nil
	}
	rawResponse(w, http.StatusOK, ctMsgpack, traces.AppendToplevelsMsgpack(make([]byte, 0, 64+len(m)*850), m))
	return nil
}

// maxFound bounds the canvases GET /v1/traces/{traceID} lists: trace IDs
// may be supplied by callers, so any number of canvases may share one.
const maxFound = 100

// foundTrace is one canvas's trace of the admin lookup.
type foundTrace struct {
	CanvasID  traces.CanvasID `json:"canvasID" msgpack:"canvasID"`
	TraceID   traces.TraceID  `json:"traceID" msgpack:"traceID"`
	RootTLID  traces.TLID     `json:"rootTLID" msgpack:"rootTLID"`
	Timestamp stamp           `json:"timestamp" msgpack:"timestamp"`
	Held      bool            `json:"held" msgpack:"held"`
}

// findTrace answers the first match (lowest canvas ID) at the top level, as
// the single-match contract has it, and every match in "matches", so a
// canvas never hides another's trace of the same ID.
func (s *Server) findTrace(w http.ResponseWriter, r *http.Request) error {
	id, err := traces.ParseTraceID(r.PathValue("traceID"))
	if err != nil {
		return err
	}
	recs, err := s.svc.Find(r.Context(), id, maxFound+1)
	if err != nil {
		return err
	}
	more := len(recs) > maxFound
	recs = recs[:min(len(recs), maxFound)]
	matches := make([]foundTrace, len(recs))
	for i, rec := range recs {
		matches[i] = foundTrace{rec.Canvas, rec.ID, rec.RootTLID, stamp(rec.Timestamp), rec.Held}
	}
	respond(w, r, http.StatusOK, struct {
		foundTrace
		Matches     []foundTrace `json:"matches" msgpack:"matches"`
		MoreMatches bool         `json:"moreMatches,omitempty" msgpack:"moreMatches,omitempty"`
	}{matches[0], matches, more})
	return nil
}

// searchTraces answers GET /v1/canvases/{canvasID}/traces?since=&until=
// &tlid=&prefix=&limit=&cursor=: a page of the canvas's traces, newest
// first, {"traces":[…],"nextCursor":"…"} (nextCursor absent on the last
// page).
func (s *Server) searchTraces(w http.ResponseWriter, r *http.Request) error {
	c, err := canvasParam(r)
	if err != nil {
		return err
	}
	qs := r.URL.Query()
	var q tracestore.SearchQuery
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if v := qs.Get(t.name); v != "" {
			if *t.dst, err = time.Parse(time.RFC3339Nano, v); err != nil {
				return traces.Invalid(t.name, "must be an RFC 3339 time such as 2026-11-22T03:48:01Z")
			}
		}
	}
	if v := qs.Get("tlid"); v != "" {
		tlid, err := traces.ParseTLID("tlid", v)
		if err != nil {
			return err
		}
		q.TLID = &tlid
	}
	if v := qs.Get("limit"); v != "" {
		if q.Limit, err = strconv.Atoi(v); err != nil || q.Limit < 1 {
			return traces.Invalid("limit", "must be an integer between 1 and %d", tracestore.MaxSearchLimit)
		}
	}
	q.Prefix, q.Cursor = qs.Get("prefix"), qs.Get("cursor")
	page, err := s.svc.Search(r.Context(), c, q)
	if err != nil {
		return err
	}
	if !wantsMsgpack(r) {
		b := append(make([]byte, 0, 64+len(page.Traces)*256), `{"traces":`...)
		b = appendSummariesJSON(b, page.Traces)
		if page.NextCursor != "" {
			b = append(append(append(b, `,"nextCursor":"`...), page.NextCursor...), '"')
		}
		rawResponse(w, http.StatusOK, ctJSON, append(b, "}\n"...))
		return nil
	}
	rawResponse(w, http.StatusOK, ctMsgpack, traces.AppendSearchMsgpack(make([]byte, 0, 32+len(page.Traces)*160), page.Traces, page.NextCursor))
	return nil
}
