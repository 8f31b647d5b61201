package httpapi

import (
	"net/http"

	"github.com/tracegw/tracegw/internal/traces"
)

// Unmatched requests ("404s"): requests that hit no handler.
func (s *Server) routeUnmatched() {
	s.handle("POST /v1/canvases/{canvasID}/unmatched-requests", RoleExecutor, s.saveUnmatched)
	s.handle("GET /v1/canvases/{canvasID}/unmatched-requests", RoleEditor, s.listUnmatched)
	s.handle("DELETE /v1/canvases/{canvasID}/unmatched-requests", RoleEditor, s.dismissUnmatched)
	s.handle("POST /v1/canvases/{canvasID}/unmatched-requests/{traceID}/promote", RoleEditor, s.promoteUnmatched)
}

type unmatchedItem struct {
	Module    string         `json:"module" msgpack:"module"`
	Path      string         `json:"path" msgpack:"path"`
	Modifier  string         `json:"modifier" msgpack:"modifier"`
	Timestamp stamp          `json:"timestamp" msgpack:"timestamp"`
	TraceID   traces.TraceID `json:"traceID" msgpack:"traceID"`
}

type traceIDResp struct {
	TraceID traces.TraceID `json:"traceID" msgpack:"traceID"`
}

func (s *Server) saveUnmatched(w http.ResponseWriter, r *http.Request) error {
	c, err := canvasParam(r)
	if err != nil {
		return err
	}
	body, isJSON, err := s.readBody(r)
	if err != nil {
		return err
	}
	u, err := traces.DecodeUnmatched(body, isJSON, s.limits)
	if err != nil {
		return err
	}
	e, err := s.svc.SaveUnmatched(r.Context(), c, u)
	if err != nil {
		return err
	}
	respond(w, r, http.StatusCreated, traceIDResp{e.ID})
	return nil
}

func (s *Server) listUnmatched(w http.ResponseWriter, r *http.Request) error {
	c, err := canvasParam(r)
	if err != nil {
		return err
	}
	list, err := s.svc.ListUnmatched(r.Context(), c)
	if err != nil {
		return err
	}
	out := make([]unmatchedItem, len(list))
	for i, e := range list {
		out[i] = unmatchedItem{Module: e.Module, Path: e.Path, Modifier: e.Modifier, Timestamp: stamp(e.Timestamp), TraceID: e.ID}
	}
	respond(w, r, http.StatusOK, struct {
		Unmatched []unmatchedItem `json:"unmatched" msgpack:"unmatched"`
	}{out})
	return nil
}

// dismissUnmatched takes the route from the query: module, path and
// modifier are required (modifier may be empty: a request stored without
// one has the empty modifier).
func (s *Server) dismissUnmatched(w http.ResponseWriter, r *http.Request) error {
	c, err := canvasParam(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	if !q.Has("modifier") {
		return traces.Invalid("modifier", "required (it may be empty)")
	}
	if err := s.svc.DismissUnmatched(r.Context(), c, q.Get("module"), q.Get("path"), q.Get("modifier")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) promoteUnmatched(w http.ResponseWriter, r *http.Request) error {
	c, id, err := traceParams(r)
	if err != nil {
		return err
	}
	body, isJSON, err := s.readBody(r)
	if err != nil {
		return err
	}
	var (
		root    traces.TLID
		hasRoot bool
	)
	err = traces.DecodeFields(body, isJSON, s.limits, map[string]func(*traces.Reader, string) error{
		"rootTLID": func(rd *traces.Reader, f string) (err error) {
			root, err = rd.TLID(f)
			hasRoot = true
			return err
		},
	})
	if err != nil {
		return err
	}
	if !hasRoot {
		return traces.Invalid("rootTLID", "required")
	}
	saved, err := s.svc.PromoteUnmatched(r.Context(), c, id, root)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/canvases/"+c.String()+"/traces/"+saved.ID.String())
	respond(w, r, http.StatusCreated, traceIDResp{saved.ID})
	return nil
}
