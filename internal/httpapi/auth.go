package httpapi

import (
	"net/http"

	"github.com/tracegw/tracegw/internal/traces"
)

// authorize authenticates the request and checks that its principal has at
// least role and, for canvas routes, the canvas in scope.
func (s *Server) authorize(r *http.Request, role Role) (Principal, error) {
	if s.auth == nil {
		return Principal{Role: RoleAdmin}, nil
	}
	p, err := s.auth.Authenticate(r)
	if err != nil {
		return Principal{}, err
	}
	if !allowed(p.Role, role) {
		return Principal{}, traces.Public(errPermission, "this route needs the %s role", roleName(role))
	}
	if p.Canvas != nil {
		c := r.PathValue("canvasID")
		if c == "" && r.PathValue("jobID") != "" {
			// A job belongs to one canvas, which only the handler can
			// look up: getJob checks the scope (and answers 404 for
			// another canvas's job).
			return p, nil
		}
		if c == "" {
			return Principal{}, traces.Public(errPermission, "a canvas-scoped token cannot use routes outside its canvas")
		}
		id, err := traces.ParseCanvasID(c)
		if err != nil {
			return Principal{}, err
		}
		if id != *p.Canvas {
			return Principal{}, traces.Public(errPermission, "token is scoped to another canvas")
		}
	}
	return p, nil
}

// allowed is the API's role table (docs/api.md): executor saves traces
// and unmatched requests; editor reads and changes traces, holds and
// unmatched requests; admin does everything.
func allowed(have, need Role) bool {
	switch need {
	case RoleExecutor:
		return have == RoleExecutor || have == RoleAdmin
	case RoleEditor:
		return have == RoleEditor || have == RoleAdmin
	case RoleAdmin:
		return have == RoleAdmin
	}
	return true
}

func roleName(r Role) string {
	switch r {
	case RoleExecutor:
		return "executor"
	case RoleEditor:
		return "editor"
	case RoleAdmin:
		return "admin"
	}
	return "none"
}
