package httpapi

import (
	"net/http"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// Direct uploads of large traces (tracestore/direct.go): the executor asks
// for a signed URL, PUTs the gzip-compressed canonical document straight
// to the trace's object, and finalizes through the gateway, which reads,
// validates and indexes it. Both routes are the executor's, as a save is.
func (s *Server) routeUploads() {
	s.handle("POST /v1/canvases/{canvasID}/traces/uploads", RoleExecutor, s.uploadSlot)
	s.handle("POST /v1/canvases/{canvasID}/traces/uploads/{traceID}/finalize", RoleExecutor, s.finalizeUpload)
}

// maxUploadRequest bounds the small JSON or msgpack bodies of both routes.
const maxUploadRequest = 4 << 10

// uploadFields reads {"traceID"?, "sha256"} into id (when want) and sha.
func (s *Server) uploadFields(r *http.Request, id *traces.TraceID, sha *string) error {
	body, isJSON, err := s.readBody(r)
	if err != nil {
		return err
	}
	lim := s.limits
	lim.MaxBody = maxUploadRequest
	fields := map[string]func(*traces.Reader, string) error{
		"sha256": func(rd *traces.Reader, f string) (err error) {
			*sha, err = rd.String(f, 64)
			return err
		},
	}
	if id != nil {
		fields["traceID"] = func(rd *traces.Reader, f string) error {
			v, err := rd.String(f, 36)
			if err == nil {
				*id, err = traces.ParseTraceID(v)
			}
			return err
		}
	}
	return traces.DecodeFields(body, isJSON, lim, fields)
}

func (s *Server) uploadSlot(w http.ResponseWriter, r *http.Request) error {
	c, err := canvasParam(r)
	if err != nil {
		return err
	}
	var (
		id  traces.TraceID
		sha string
	)
	if err := s.uploadFields(r, &id, &sha); err != nil {
		return err
	}
	slot, err := s.svc.UploadSlot(r.Context(), c, id, sha)
	if err != nil {
		return err
	}
	respond(w, r, http.StatusCreated, struct {
		TraceID  traces.TraceID    `json:"traceID" msgpack:"traceID"`
		Method   string            `json:"method" msgpack:"method"`
		URL      string            `json:"url" msgpack:"url"`
		Headers  map[string]string `json:"headers" msgpack:"headers"`
		Expires  stamp             `json:"expires" msgpack:"expires"`
		Finalize string            `json:"finalize" msgpack:"finalize"`
	}{slot.TraceID, slot.Method, slot.URL, slot.Headers, stamp(slot.Expires.Truncate(time.Millisecond)),
		"/v1/canvases/" + c.String() + "/traces/uploads/" + id.String() + "/finalize"})
	return nil
}

func (s *Server) finalizeUpload(w http.ResponseWriter, r *http.Request) error {
	c, id, err := traceParams(r)
	if err != nil {
		return err
	}
	var sha string
	if err := s.uploadFields(r, nil, &sha); err != nil {
		return err
	}
	// Finalize holds the object and its inflated document in memory, each
	// at most --max-body: they count against the body budget as a save's
	// body does.
	if err := s.reservation(r).grow(r.Context(), min(2*s.limits.MaxBody, s.budget.size)); err != nil {
		return err
	}
	saved, err := s.svc.Finalize(r.Context(), c, id, sha)
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
