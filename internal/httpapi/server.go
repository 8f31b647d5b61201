package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tracegw/tracegw/internal/canvases"
	"github.com/tracegw/tracegw/internal/holds"
	"github.com/tracegw/tracegw/internal/traces"
	"github.com/tracegw/tracegw/internal/tracestore"
)

// Role is what a bearer token allows (README's Authentication).
type Role int

// Roles, each allowed what the ones before it are (admin may do everything).
const (
	RoleNone Role = iota
	RoleExecutor
	RoleEditor
	RoleAdmin
)

// Principal is the authenticated caller: a role, an optional canvas scope
// and who it is (a token's sub, or a service account's e-mail).
type Principal struct {
	Role    Role
	Canvas  *traces.CanvasID // nil: every canvas
	Subject string
}

// Authenticator checks a request's credentials. A missing or bad token
// returns an error wrapping errUnauthenticated (401); a valid credential
// that grants nothing here, one wrapping errPermission (403).
type Authenticator interface {
	Authenticate(r *http.Request) (Principal, error)
}

// Options configure a Server. Service is required.
type Options struct {
	Service *tracestore.Service
	Auth    Authenticator // nil: every caller is admin (--insecure-no-auth)
	Limits  traces.Limits
	Logger  *slog.Logger
	// Ready reports readiness parts ("database", "bucket", "subscription")
	// that fail; nil means ready.
	Ready func(ctx context.Context) map[string]error
	// Holds serves the hold routes; nil answers them 503 unavailable.
	Holds *holds.Service
	// Canvases deletes canvases and forgets toplevels; nil answers those
	// routes 503 unavailable.
	Canvases *canvases.Service
	// Registerer receives the HTTP metrics (requests by route and code,
	// latency by route, bytes saved); nil: not exported.
	Registerer prometheus.Registerer
	// Metrics, when set, is served as GET /metrics on the API handler. Leave
	// it nil when an admin listener serves MetricsHandler instead.
	Metrics prometheus.Gatherer
	// MaxInflightBytes caps the bytes of request bodies held in memory at
	// once across the server (see inflight.go); 0 means
	// DefaultMaxInflightBytes. It is raised to just above Limits.MaxBody if
	// smaller, so that one body of the largest size always fits.
	MaxInflightBytes int64
	// InflightWait is how long a request waits for room in that budget
	// before it is answered 503 with Retry-After; 0 means
	// DefaultInflightWait.
	InflightWait time.Duration
}

// Server is the HTTP API. Handler is safe for concurrent use.
type Server struct {
	svc    *tracestore.Service
	auth   Authenticator
	limits traces.Limits
	log    *slog.Logger
	ready  func(ctx context.Context) map[string]error
	holds  *holds.Service
	jobs   *canvases.Service
	mux    *http.ServeMux
	routes []string // registered patterns, for the OpenAPI check
	met    *httpMetrics
	budget *bodyBudget
}

// New builds the server and registers every route.
func New(o Options) *Server {
	s := &Server{svc: o.Service, auth: o.Auth, limits: o.Limits.OrDefault(), log: o.Logger, ready: o.Ready, mux: http.NewServeMux(),
		met: newMetrics(o.Registerer)}
	s.holds = o.Holds
	s.jobs = o.Canvases
	budget, wait := o.MaxInflightBytes, o.InflightWait
	if budget <= 0 {
		budget = DefaultMaxInflightBytes
	}
	if wait <= 0 {
		wait = DefaultInflightWait
	}
	s.budget = newBodyBudget(max(budget, s.limits.MaxBody+1), wait, o.Registerer)
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.routeHealth()
	if o.Metrics != nil {
		s.mux.Handle("GET /metrics", MetricsHandler(o.Metrics))
		s.routes = append(s.routes, "GET /metrics")
	}
	s.routeTraces()
	s.routeUploads()   // uploads.go: direct uploads of large traces
	s.routeExecute()   // execute.go: replace, layers (issue: execute buttons)
	s.routeUnmatched() // unmatched.go: 404s
	s.routeCanvases()  // canvases.go: toplevel forget, canvas deletion, jobs
	s.routeHolds()     // holds.go

	s.routeCanvasList() // canvaslist.go: the canvases that hold traces (admin)
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
	save := writeRoutes[pattern]
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		st, _ := r.Context().Value(stateKey{}).(*reqState)
		if st == nil {
			st = &reqState{}
			r = r.WithContext(context.WithValue(r.Context(), stateKey{}, st))
		}
		// readBody reserves the body's bytes; they are held until the
		// handler is done with what it decoded from them.
		st.body = reservation{b: s.budget}
		defer st.body.release()
		if c, err := traces.ParseCanvasID(r.PathValue("canvasID")); err == nil {
			st.canvas = c.String()
		}
		if role != RoleNone {
			p, err := s.authorize(r, role)
			if err != nil {
				if errors.Is(err, errUnauthenticated) {
					// RFC 6750: say which scheme, and whether a token was sent.
					v := `Bearer realm="tracegw"`
					if r.Header.Get("Authorization") != "" {
						v += `, error="invalid_token"`
					}
					w.Header().Set("WWW-Authenticate", v)
				}
				s.writeError(w, r, err)
				return
			}
			st.principal = &p
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		}
		var body *countingBody
		if save && r.Body != nil {
			body = &countingBody{ReadCloser: r.Body}
			r.Body = body
		}
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
			return
		}
		if sw, ok := w.(*statusWriter); ok && body != nil && sw.status < 300 {
			s.met.savedBytes.WithLabelValues(pattern).Add(float64(body.n))
		}
	})
}

// reqState is what the request pipeline learns while routing (the
// canvas and the principal), for the request's log line.
type reqState struct {
	canvas    string // the path's canvasID, once validated
	principal *Principal
	body      reservation // the request body's share of the in-flight budget
}

type stateKey struct{}

type principalKey struct{}

// Handler returns the root handler: request ids, one log line per request,
// path hygiene, then the routes.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		log := s.log.With("request_id", id)
		st := &reqState{}
		ctx := context.WithValue(r.Context(), loggerKey{}, log)
		ctx = context.WithValue(ctx, requestIDKey{}, id)
		r = r.WithContext(context.WithValue(ctx, stateKey{}, st))
		sw := &statusWriter{ResponseWriter: w}
		s.serve(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		d := time.Since(start)
		route := routeOf(s.mux, r)
		s.met.observe(route, sw.status, d)
		attrs := []any{"method", r.Method, "route", route, "status", sw.status, "duration", d}
		if st.canvas != "" {
			attrs = append(attrs, "canvas_id", st.canvas)
		}
		if p := st.principal; p != nil {
			attrs = append(attrs, "role", roleName(p.Role))
		}
		log.Info("request", attrs...)
	})
}

// validRequestID accepts a caller's X-Request-Id only if it is short and
// plain, so it can be echoed and logged verbatim.
func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}

// maxIfMatch bounds If-Match: a quoted decimal generation is at most 21 bytes.
const maxIfMatch = 64

func (s *Server) serve(w *statusWriter, r *http.Request) {
	// The mux would redirect ".." and "//" to a cleaned path; the API
	// answers 400 for anything that is not a well-formed path, never a
	// lookup.
	if p := r.URL.EscapedPath(); strings.Contains(p, "//") || strings.Contains(p, "/./") ||
		strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") || strings.HasSuffix(p, "/.") {
		s.writeError(w, r, traces.Invalid("path", "must not contain empty, '.' or '..' segments"))
		return
	}
	if v := r.Header.Values("If-Match"); len(v) > 1 || len(v) == 1 && len(v[0]) > maxIfMatch {
		s.writeError(w, r, traces.Invalid("If-Match", "must be one generation (at most %d bytes)", maxIfMatch))
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "" {
		// Unknown route or method: let the mux pick 404 or 405 (with the
		// Allow header it derives from the patterns registered for the
		// path), but answer in the JSON error model.
		probe := &statusWriter{ResponseWriter: discard{http.Header{}}}
		s.mux.ServeHTTP(probe, r)
		status, code := http.StatusNotFound, "not_found"
		if probe.status == http.StatusMethodNotAllowed {
			status, code = http.StatusMethodNotAllowed, "method_not_allowed"
			w.Header().Set("Allow", probe.Header().Get("Allow"))
		}
		var body apiError
		body.Error.Code, body.Error.Message = code, "no route for "+traces.Cut(r.Method+" "+r.URL.EscapedPath(), 2*traces.MaxQuoted)
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

// discard is a ResponseWriter that keeps only the header.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}
