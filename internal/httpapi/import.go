package httpapi

import (
	"net/http"

	"github.com/tracegw/tracegw/internal/traces"
)

// importMode reads ?import= of a save: true asks for the import mode
// (tracestore.Service.Import: the object's customTime is the trace's own
// timestamp, so an old trace is judged as old), which only an admin may
// use, since it decides how long a trace is kept. Absent or false is a
// plain save.
func importMode(r *http.Request) (bool, error) {
	q := r.URL.Query()
	if !q.Has("import") {
		return false, nil
	}
	switch v := q["import"]; {
	case len(v) != 1:
		return false, traces.Invalid("import", "must be given once")
	case v[0] == "false":
		return false, nil
	case v[0] != "true":
		return false, traces.Invalid("import", "must be true or false")
	}
	if p, ok := r.Context().Value(principalKey{}).(Principal); !ok || p.Role != RoleAdmin {
		return false, traces.Public(errPermission, "importing traces (import=true) needs the admin role")
	}
	return true, nil
}
