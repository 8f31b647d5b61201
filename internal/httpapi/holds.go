package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"net/http"

	"github.com/tracegw/tracegw/internal/holds"
	"github.com/tracegw/tracegw/internal/traces"
)

func (s *Server) routeHolds() {
	s.handle("PUT /v1/canvases/{canvasID}/traces/{traceID}/hold", RoleEditor, s.putHold)
	s.handle("DELETE /v1/canvases/{canvasID}/traces/{traceID}/hold", RoleEditor, s.deleteHold)
	s.handle("GET /v1/canvases/{canvasID}/holds", RoleEditor, s.listHolds)
}

// hold is one item of the holds list, and PUT …/hold's answer.
type hold struct {
	TraceID traces.TraceID `json:"traceID" msgpack:"traceID"`
	Reason  string         `json:"reason" msgpack:"reason"`
	HeldAt  stamp          `json:"heldAt" msgpack:"heldAt"`
}

// holdService returns the hold service, or an error answering 503 when the
// server was built without one.
func (s *Server) holdService() (*holds.Service, error) {
	if s.holds == nil {
		return nil, fmt.Errorf("holds are not configured: %w", traces.ErrUnavailable)
	}
	return s.holds, nil
}

// putHold holds a trace. The body is optional: none (Content-Length 0), an
// empty JSON body, or {"reason": "…"} (null or absent: no reason).
func (s *Server) putHold(w http.ResponseWriter, r *http.Request) error {
	c, id, err := traceParams(r)
	if err != nil {
		return err
	}
	svc, err := s.holdService()
	if err != nil {
		return err
	}
	var reason string
	if hasBody(r) {
		body, isJSON, err := s.readBody(r)
		if err != nil {
			return err
		}
		err = traces.DecodeFields(body, isJSON, s.limits, map[string]func(*traces.Reader, string) error{
			"reason": func(rd *traces.Reader, f string) (err error) {
				if rd.Nil() {
					return nil
				}
				reason, err = rd.String(f, holds.MaxReason)
				return err
			},
		})
		if err != nil {
			return err
		}
	}
	h, err := svc.Hold(r.Context(), c, id, reason)
	if err != nil {
		return err
	}
	respond(w, r, http.StatusOK, hold{TraceID: h.ID, Reason: h.Reason, HeldAt: stamp(h.HeldAt)})
	return nil
}

func (s *Server) deleteHold(w http.ResponseWriter, r *http.Request) error {
	c, id, err := traceParams(r)
	if err != nil {
		return err
	}
	svc, err := s.holdService()
	if err != nil {
		return err
	}
	if err := svc.Release(r.Context(), c, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listHolds(w http.ResponseWriter, r *http.Request) error {
	c, err := canvasParam(r)
	if err != nil {
		return err
	}
	svc, err := s.holdService()
	if err != nil {
		return err
	}
	hs, err := svc.List(r.Context(), c)
	if err != nil {
		return err
	}
	out := make([]hold, len(hs))
	for i, h := range hs {
		out[i] = hold{TraceID: h.ID, Reason: h.Reason, HeldAt: stamp(h.HeldAt)}
	}
	respond(w, r, http.StatusOK, struct {
		Holds []hold `json:"holds" msgpack:"holds"`
	}{out})
	return nil
}

// hasBody reports whether an optional body was sent: a chunked request with
// no Content-Type and nothing in it counts as none.
func hasBody(r *http.Request) bool {
	if r.ContentLength != -1 || r.Header.Get("Content-Type") != "" {
		return r.ContentLength != 0
	}
	var b [1]byte
	n, _ := io.ReadFull(r.Body, b[:])
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b[:n]), r.Body))
	return n > 0
}
