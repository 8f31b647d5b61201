package main

import (
	"net/http"
	"strings"

	"github.com/tracegw/tracegw/internal/webui"
)

// withUI serves the trace browser (internal/webui) at /ui/ beside h, on the
// same listener, so the page calls the API on its own origin.
func withUI(h http.Handler, o webui.Options) http.Handler {
	ui := webui.Handler(o)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ui" || strings.HasPrefix(r.URL.Path, "/ui/") {
			ui.ServeHTTP(w, r)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// serveHandler is serve's API handler, with the trace browser when --ui
// is given (off by default: the page asks for an admin token).
func serveHandler(c Config, api http.Handler) http.Handler {
	if !c.UI {
		return api
	}
	return withUI(api, webui.Options{})
}
