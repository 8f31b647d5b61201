package httpapi

import (
	"net/http"
	"strconv"

	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
)

func (s *Server) routeCanvasList() {
	s.handle("GET /v1/canvases", RoleAdmin, s.listCanvases)
}

// listCanvases answers GET /v1/canvases?cursor=&limit= (admin): the
// canvases that hold traces, by canvas ID, {"canvases":[…],"nextCursor"}
// (nextCursor absent on the last page; it is the last canvas ID of the
// page, to pass back as cursor).
func (s *Server) listCanvases(w http.ResponseWriter, r *http.Request) error {
	qs := r.URL.Query()
	var after traces.CanvasID
	if v := qs.Get("cursor"); v != "" {
		c, err := traces.ParseCanvasID(v)
		if err != nil {
			return traces.Invalid("cursor", "must be the nextCursor of a previous page (a canvas ID)")
		}
		after = c
	}
	limit := 0
	if v := qs.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return traces.Invalid("limit", "must be an integer between 1 and %d", tracestore.MaxCanvasesLimit)
		}
		limit = n
	}
	list, more, err := s.svc.Canvases(r.Context(), after, limit)
	if err != nil {
		return err
	}
	out := struct {
		Canvases   []traces.CanvasID `json:"canvases" msgpack:"canvases"`
		NextCursor string            `json:"nextCursor,omitempty" msgpack:"nextCursor,omitempty"`
	}{Canvases: list}
	if out.Canvases == nil {
		out.Canvases = []traces.CanvasID{}
	}
	if more && len(list) > 0 {
		out.NextCursor = list[len(list)-1].String()
	}
	respond(w, r, http.StatusOK, out)
	return nil
}
