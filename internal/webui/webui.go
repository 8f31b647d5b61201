package webui

import (
	"embed"
	"encoding/json"
	"io/fs"
	"net"
	"net/http"
	"strings"
)

//go:embed static
var static embed.FS

// Options configure Handler.
type Options struct {
	// DevToken, when set, is handed to the page by /ui/config.json so that
	// it calls the API without asking (tracegw dev): only to a request
	// from loopback with a loopback Host, so neither another machine nor a
	// web page reaching this port through DNS rebinding can read it. The
	// page also shows the emulator's clock then.
	DevToken string
}

// Handler serves the page under /ui/ (mount it at "/ui/" and "/ui"). The
// files hold no data: every call the page makes carries the admin token,
// which the API checks. Safe for concurrent use.
func Handler(o Options) http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		// The page runs only its own files and talks only to this origin.
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			writeJSON(w, http.StatusMethodNotAllowed, errorBody("method_not_allowed", "the trace browser's files are read with GET", ""))
			return
		}
		switch r.URL.Path {
		case "/ui":
			http.Redirect(w, r, "/ui/", http.StatusMovedPermanently)
		case "/ui/config.json":
			config(w, r, o)
		default:
			files.ServeHTTP(w, r)
		}
	})
}

// config tells the page how it runs: {"mode":"dev","token":"…"} in dev
// (loopback only), {"mode":"serve"} otherwise, where the page asks for an
// admin token.
func config(w http.ResponseWriter, r *http.Request, o Options) {
	w.Header().Set("Cache-Control", "no-store")
	if o.DevToken == "" {
		writeJSON(w, http.StatusOK, map[string]string{"mode": "serve"})
		return
	}
	if !loopbackHost(r.Host) || !loopbackAddr(r.RemoteAddr) {
		writeJSON(w, http.StatusForbidden, errorBody("permission_denied",
			"dev hands its token only to a page opened on loopback (http://127.0.0.1:…/ui/ or http://localhost:…/ui/)", "Host"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"mode": "dev", "token": o.DevToken})
}

// loopbackHost reports whether a Host header names this machine by a
// loopback name or address.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// loopbackAddr reports whether a peer address is a loopback one.
func loopbackAddr(addr string) bool {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

func errorBody(code, message, field string) any {
	type e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	}
	return struct {
		Error e `json:"error"`
	}{e{code, message, field}}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
