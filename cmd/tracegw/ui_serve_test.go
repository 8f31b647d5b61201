package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// serve's trace browser is off by default; with --ui the page is served on
// the API's listener and its configuration hands out no token.
func TestServeUIFlag(t *testing.T) {
	t.Parallel()
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "the API", http.StatusTeapot) })
	get := func(h http.Handler, path string) (int, string) {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		return w.Code, w.Body.String()
	}
	off, err := Load("serve", nil, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := get(serveHandler(off, api), "/ui/"); code != http.StatusTeapot {
		t.Errorf("without --ui, /ui/ reached %d, want the API's answer", code)
	}
	on, err := Load("serve", []string{"--ui"}, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	h := serveHandler(on, api)
	if code, body := get(h, "/ui/"); code != http.StatusOK || !strings.Contains(body, "trace browser") {
		t.Errorf("with --ui, /ui/ = %d %.80q, want the page", code, body)
	}
	if code, body := get(h, "/ui/config.json"); code != http.StatusOK || strings.Contains(body, "token") {
		t.Errorf("serve's /ui/config.json = %d %s, want a mode and no token", code, body)
	}
	if code, _ := get(h, "/v1/canvases"); code != http.StatusTeapot {
		t.Errorf("with --ui, /v1/canvases reached %d, want the API's answer", code)
	}
}
