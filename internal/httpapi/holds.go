package httpapi

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

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
	Until   *stamp         `json:"until,omitempty" msgpack:"until,omitempty"`
	HeldBy  string         `json:"heldBy,omitempty" msgpack:"heldBy,omitempty"`
}

func holdOf(h holds.Hold) hold {
	out := hold{TraceID: h.ID, Reason: h.Reason, HeldAt: stamp(h.HeldAt), HeldBy: h.By}
	if !h.Until.IsZero() {
		u := stamp(h.Until)
		out.Until = &u
	}
	return out
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
// empty JSON body, or {"reason": "…", "until": "…"}: reason null or absent
// is no reason (a repeat keeps the recorded one); until is an RFC 3339 time
// or a duration from now ("72h", "3d", "1d12h"; in msgpack also a
// timestamp), null for no end, absent to keep a repeated hold's end. The
// holder is the token's subject.
func (s *Server) putHold(w http.ResponseWriter, r *http.Request) error {
	c, id, err := traceParams(r)
	if err != nil {
		return err
	}
	svc, err := s.holdService()
	if err != nil {
		return err
	}
	var sp holds.Spec
	if p, ok := r.Context().Value(principalKey{}).(Principal); ok {
		sp.By = p.Subject
	}
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
				sp.Reason, err = rd.String(f, holds.MaxReason)
				return err
			},
			"until": func(rd *traces.Reader, f string) error { return readHoldEnd(rd, f, &sp) },
		})
		if err != nil {
			return err
		}
	}
	h, err := svc.HoldWith(r.Context(), c, id, sp)
	if err != nil {
		return err
	}
	respond(w, r, http.StatusOK, holdOf(h))
	return nil
}

// maxHoldEnd bounds until's text: an RFC 3339 time with nanoseconds and an
// offset is 35 bytes.
const maxHoldEnd = 64

// readHoldEnd reads until into sp: null (no end), a timestamp, an RFC 3339
// time or a duration ("72h", "3d", "1d12h").
func readHoldEnd(rd *traces.Reader, f string, sp *holds.Spec) error {
	if rd.Nil() {
		sp.NoEnd = true
		return nil
	}
	if rd.Peek() == traces.TypeExt {
		t, err := rd.Timestamp(f)
		sp.Until = t
		return err
	}
	v, err := rd.String(f, maxHoldEnd)
	if err != nil {
		return err
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		sp.Until = t
		return nil
	}
	if sp.For, err = parseDays(v); err != nil || sp.For <= 0 {
		return traces.Invalid(f, "must be an RFC 3339 time (2026-12-01T00:00:00Z) or a positive duration (72h, 3d, 1d12h)")
	}
	return nil
}

// parseDays parses a Go duration with an optional leading number of days:
// "72h", "3d", "1d12h".
func parseDays(s string) (time.Duration, error) {
	days, rest, ok := strings.Cut(s, "d")
	if !ok {
		return time.ParseDuration(s)
	}
	n, err := strconv.ParseUint(days, 10, 16)
	if err != nil {
		return 0, err
	}
	d := time.Duration(n) * 24 * time.Hour
	if rest != "" {
		r, err := time.ParseDuration(rest)
		if err != nil {
			return 0, err
		}
		d += r
	}
	return d, nil
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
		out[i] = holdOf(h)
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
