package httpapi

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"time"
)

func (s *Server) routeHealth() {
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.readyz)
	s.routes = append(s.routes, "GET /healthz", "GET /readyz")
}

// readyz checks every dependency and names the failing ones.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if s.ready == nil {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	failed := s.ready(ctx)
	if len(failed) == 0 {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
		return
	}
	parts := make([]string, 0, len(failed))
	for name, err := range failed {
		parts = append(parts, name)
		logger(r.Context(), s.log).Warn("not ready", "part", name, "err", err)
	}
	sort.Strings(parts)
	var body apiError
	body.Error.Code = "unavailable"
	body.Error.Message = "not ready: " + strings.Join(parts, ", ")
	body.Error.Field = parts[0]
	writeJSON(w, http.StatusServiceUnavailable, body)
}
