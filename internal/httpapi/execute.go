package httpapi

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/tracegw/tracegw/internal/traces"
)

// The editor's "execute" buttons: replace a trace (execute handler) and add
// a layer of function results (execute function).
func (s *Server) routeExecute() {
	s.handle("PUT /v1/canvases/{canvasID}/traces/{traceID}", RoleEditor, s.replaceTrace)
	s.handle("POST /v1/canvases/{canvasID}/traces/{traceID}/function-results", RoleEditor, s.addFunctionResults)
}

// ifMatch parses If-Match: one object generation, as GET's ETag gives it
// ("123"), or bare (123). Absent is 0. Lists and "*" are refused: a replace
// names exactly the generation it read.
func ifMatch(r *http.Request) (int64, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "" {
		return 0, nil
	}
	v = strings.TrimPrefix(v, "W/")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	g, err := strconv.ParseInt(v, 10, 64)
	if err != nil || g <= 0 {
		return 0, traces.Invalid("If-Match", "must be one object generation, as the ETag of GET gives it")
	}
	return g, nil
}

func (s *Server) replaceTrace(w http.ResponseWriter, r *http.Request) error {
	c, id, err := traceParams(r)
	if err != nil {
		return err
	}
	gen, err := ifMatch(r)
	if err != nil {
		return err
	}
	body, isJSON, err := s.readBody(r)
	if err != nil {
		return err
	}
	t, err := traces.DecodeTrace(body, isJSON, s.limits)
	if err != nil {
		return err
	}
	saved, err := s.svc.Replace(r.Context(), c, id, t, gen)
	if err != nil {
		return err
	}
	w.Header().Set("ETag", `"`+strconv.FormatInt(saved.Generation, 10)+`"`)
	respond(w, r, http.StatusOK, struct {
		TraceID    traces.TraceID `json:"traceID" msgpack:"traceID"`
		Generation generation     `json:"generation" msgpack:"generation"`
	}{saved.ID, generation(saved.Generation)})
	return nil
}

func (s *Server) addFunctionResults(w http.ResponseWriter, r *http.Request) error {
	c, id, err := traceParams(r)
	if err != nil {
		return err
	}
	body, isJSON, err := s.readBody(r)
	if err != nil {
		return err
	}
	tlids, results, err := traces.DecodeLayer(body, isJSON, s.limits)
	if err != nil {
		return err
	}
	added, err := s.svc.AddLayer(r.Context(), c, id, tlids, results)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/canvases/"+c.String()+"/traces/"+id.String())
	respond(w, r, http.StatusCreated, struct {
		TraceID    traces.TraceID `json:"traceID" msgpack:"traceID"`
		Layer      int            `json:"layer" msgpack:"layer"`
		Generation generation     `json:"generation" msgpack:"generation"` // of the trace the layer applies to
	}{id, added.N, generation(added.Generation)})
	return nil
}
