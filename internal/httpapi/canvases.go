package httpapi

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/tracegw/tracegw/internal/canvases"
	"github.com/tracegw/tracegw/internal/traces"
)

// Canvas lifecycle: forgetting a toplevel, deleting a canvas, its job, its
// retention settings.
func (s *Server) routeCanvases() {
	s.handle("DELETE /v1/canvases/{canvasID}/toplevels/{tlid}", RoleEditor, s.forgetToplevel)
	s.handle("GET /v1/canvases/{canvasID}/policy", RoleEditor, s.getPolicy)
	s.handle("PUT /v1/canvases/{canvasID}/policy", RoleAdmin, s.putPolicy)
	s.handle("DELETE /v1/canvases/{canvasID}", RoleAdmin, s.deleteCanvas)
	s.handle("GET /v1/jobs/{jobID}", RoleAdmin, s.getJob)
}

func (s *Server) forgetToplevel(w http.ResponseWriter, r *http.Request) error {
	c, err := canvasParam(r)
	if err != nil {
		return err
	}
	tlid, err := traces.ParseTLID("tlid", r.PathValue("tlid"))
	if err != nil {
		return err
	}
	if s.jobs == nil {
		return errNoJobs
	}
	if err := s.jobs.ForgetToplevel(r.Context(), c, tlid); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

var errNoJobs = fmt.Errorf("canvases are not configured: %w", traces.ErrUnavailable)

func (s *Server) deleteCanvas(w http.ResponseWriter, r *http.Request) error {
	c, err := canvasParam(r)
	if err != nil {
		return err
	}
	if s.jobs == nil {
		return errNoJobs
	}
	job, err := s.jobs.DeleteCanvas(r.Context(), c)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/jobs/"+job.ID.String())
	respond(w, r, http.StatusAccepted, jobOf(job))
	return nil
}

// jobResp is the API's job ({"jobID","canvasID","state","deleted","error"})
// with the OpenAPI Job schema's id and kind.
type jobResp struct {
	JobID    traces.JobID    `json:"jobID" msgpack:"jobID"`
	ID       traces.JobID    `json:"id" msgpack:"id"`
	Kind     string          `json:"kind" msgpack:"kind"`
	CanvasID traces.CanvasID `json:"canvasID" msgpack:"canvasID"`
	State    string          `json:"state" msgpack:"state"`
	Deleted  int64           `json:"deleted" msgpack:"deleted"`
	Error    string          `json:"error,omitempty" msgpack:"error,omitempty"`
}

func jobOf(j traces.Job) jobResp {
	return jobResp{JobID: j.ID, ID: j.ID, Kind: j.Kind, CanvasID: j.Canvas, State: j.State, Deleted: j.Deleted, Error: j.Error}
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) error {
	id, err := traces.ParseJobID(r.PathValue("jobID"))
	if err != nil {
		return err
	}
	if s.jobs == nil {
		return errNoJobs
	}
	job, err := s.jobs.Job(r.Context(), id)
	// Another canvas's job is answered exactly as a job that does not
	// exist: the answer must not tell a scoped token that it exists.
	p, _ := r.Context().Value(principalKey{}).(Principal)
	if errors.Is(err, traces.ErrNotFound) || err == nil && p.Canvas != nil && *p.Canvas != job.Canvas {
		return traces.Public(fmt.Errorf("job %s: %w", id, traces.ErrNotFound), "job %s not found", id)
	}
	if err != nil {
		return err
	}
	respond(w, r, http.StatusOK, jobOf(job))
	return nil
}

// policyResp is a canvas's retention settings: the keep-N in effect,
// whether it is the server's default, and (PUT only) whether a raise left
// renewals to the next GC pass.
type policyResp struct {
	KeepPerToplevel int   `json:"keepPerToplevel" msgpack:"keepPerToplevel"`
	IsDefault       bool  `json:"isDefault" msgpack:"isDefault"`
	RenewalPending  *bool `json:"renewalPending,omitempty" msgpack:"renewalPending,omitempty"`
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) error {
	c, err := canvasParam(r)
	if err != nil {
		return err
	}
	if s.jobs == nil {
		return errNoJobs
	}
	p, err := s.jobs.Policy(r.Context(), c)
	if err != nil {
		return err
	}
	respond(w, r, http.StatusOK, policyResp{KeepPerToplevel: p.Keep, IsDefault: !p.Own})
	return nil
}

// putPolicy sets a canvas's keep-N: {"keepPerToplevel": n}; null, absent
// or an empty body resets it to the server's default.
func (s *Server) putPolicy(w http.ResponseWriter, r *http.Request) error {
	c, err := canvasParam(r)
	if err != nil {
		return err
	}
	if s.jobs == nil {
		return errNoJobs
	}
	keep := 0
	if hasBody(r) {
		body, isJSON, err := s.readBody(r)
		if err != nil {
			return err
		}
		err = traces.DecodeFields(body, isJSON, s.limits, map[string]func(*traces.Reader, string) error{
			"keepPerToplevel": func(rd *traces.Reader, f string) error {
				if rd.Nil() {
					return nil
				}
				n, err := rd.Int(f)
				if err != nil {
					return traces.Invalid(f, "must be an integer between %d and %d, or null for the server's default", canvases.MinKeep, canvases.MaxKeep)
				}
				if n < canvases.MinKeep || n > canvases.MaxKeep {
					return traces.Invalid(f, "must be between %d and %d (or null for the server's default)", canvases.MinKeep, canvases.MaxKeep)
				}
				keep = int(n)
				return nil
			},
		})
		if err != nil {
			return err
		}
	}
	p, err := s.jobs.SetPolicy(r.Context(), c, keep)
	if err != nil {
		return err
	}
	pending := p.RenewalPending
	respond(w, r, http.StatusOK, policyResp{KeepPerToplevel: p.Keep, IsDefault: !p.Own, RenewalPending: &pending})
	return nil
}
