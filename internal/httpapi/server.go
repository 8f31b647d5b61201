package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// Role is what a bearer token allows (API.md's Auth).
type Role int

// Roles, each allowed what the ones before it are (admin may do everything).
const (
	RoleNone Role = iota
	RoleExecutor
	RoleEditor
	RoleAdmin
)

// Principal is the authenticated caller: a role and an optional canvas scope.
type Principal struct {
	Role   Role
	Canvas *traces.CanvasID // nil: every canvas
}

// Authenticator checks a request's credentials. A missing or bad token
// returns an error (401).
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}

// Options configure a Server. Service is required.
type Options struct {
	Service *traces.Service
	Auth    Authenticator // nil: every caller is admin (--insecure-no-auth)
	Limits  traces.Limits
	Logger  *slog.Logger
	// Ready reports readiness parts ("database", "bucket", "subscription")
	// that fail; nil means ready.
	Ready func(ctx context.Context) map[string]error
}

// Server is the HTTP API. Handler is safe for concurrent use.
type Server struct {
	svc    *traces.Service
	auth   Authenticator
	limits traces.Limits
	log    *slog.Logger
	ready  func(ctx context.Context) map[string]error
	mux    *http.ServeMux
	routes []string // registered patterns, for the OpenAPI check
}

// New builds the server and registers every route.
func New(o Options) *Server {
	s := &Server{svc: o.Service, auth: o.Auth, limits: o.Limits.OrDefault(), log: o.Logger, ready: o.Ready, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.routeHealth()
	s.routeTraces()
	s.routeExecute()   // execute.go: replace, layers (issue: execute buttons)
	s.routeUnmatched() // unmatched.go: 404s
	s.routeCanvases()  // canvases.go: toplevel forget, canvas deletion, jobs
	s.routeHolds()     // holds.go
	return s
}

// Routes returns the registered patterns ("METHOD /path").
func (s *Server) Routes() []string { return append([]string(nil), s.routes...) }

// Handle registers an extra route, for handlers that live outside this
// package's route files (e.g. the emulator's control routes in dev).
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// handle registers a /v1 route that needs at least role. Handlers get the
// authenticated principal in the request context.
func (s *Server) handle(pattern string, role Role, h func(w http.ResponseWriter, r *http.Request) error) {
	s.routes = append(s.routes, pattern)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		if role != RoleNone {
			p, err := s.authorize(r, role)
			if err != nil {
				s.writeError(w, r, err)
				return
			}
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		}
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

type principalKey struct{}

// Handler returns the root handler: request ids, one log line per request,
// path hygiene, then the routes.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		log := s.log.With("request_id", id)
		r = r.WithContext(context.WithValue(r.Context(), loggerKey{}, log))
		sw := &statusWriter{ResponseWriter: w}
		s.serve(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		log.Info("request", "method", r.Method, "route", routeOf(s.mux, r), "status", sw.status, "duration", time.Since(start))
	})
}

func (s *Server) serve(w *statusWriter, r *http.Request) {
	// The mux would redirect ".." and "//" to a cleaned path; API.md wants a
	// 400 for anything that is not a well-formed path, never a lookup.
	if p := r.URL.EscapedPath(); strings.Contains(p, "//") || strings.Contains(p, "/./") ||
		strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") || strings.HasSuffix(p, "/.") {
		s.writeError(w, r, traces.Invalid("path", "must not contain empty, '.' or '..' segments"))
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		// Unknown route or method: let the mux pick 404 or 405, but answer
		// in the JSON error model.
		probe := &statusWriter{ResponseWriter: discard{w.Header()}}
		s.mux.ServeHTTP(probe, r)
		status, code := http.StatusNotFound, "not_found"
		if probe.status == http.StatusMethodNotAllowed {
			status, code = http.StatusMethodNotAllowed, "method_not_allowed"
		}
		var body apiError
		body.Error.Code, body.Error.Message = code, "no route for "+r.Method+" "+r.URL.EscapedPath()
		writeJSON(w, status, body)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func routeOf(mux *http.ServeMux, r *http.Request) string {
	_, pattern := mux.Handler(r)
	return pattern
}

type loggerKey struct{}

// logger returns the request's logger (with its request id).
func logger(ctx context.Context, fallback *slog.Logger) *slog.Logger {
	if l, ok := ctx.Value(loggerKey{}).(*slog.Logger); ok {
		return l
	}
	return fallback
}

func newRequestID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return http.Header{} }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
