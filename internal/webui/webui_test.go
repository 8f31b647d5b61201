package webui

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, target, host, remote string) (*http.Response, string) {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	r.Host, r.RemoteAddr = host, remote
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	b, _ := io.ReadAll(w.Result().Body)
	return w.Result(), string(b)
}

// The files are served with a policy that lets the page run only its own
// code and reach only its own origin.
func TestFiles(t *testing.T) {
	t.Parallel()
	h := Handler(Options{})
	for path, want := range map[string]string{"/ui/": "<title>tracegw trace browser</title>", "/ui/app.js": "async function loadCanvas", "/ui/style.css": ".track"} {
		resp, body := get(t, h, "GET", path, "gw.example", "10.0.0.1:1234")
		if resp.StatusCode != 200 || !strings.Contains(body, want) {
			t.Errorf("GET %s: %d, body without %q", path, resp.StatusCode, want)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "connect-src 'self'") {
			t.Errorf("GET %s: Content-Security-Policy %q", path, csp)
		}
	}
	if resp, _ := get(t, h, "GET", "/ui", "gw.example", "10.0.0.1:1234"); resp.StatusCode != http.StatusMovedPermanently || resp.Header.Get("Location") != "/ui/" {
		t.Errorf("GET /ui: %d to %q, want a redirect to /ui/", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := get(t, h, "GET", "/ui/nothing.js", "gw.example", "10.0.0.1:1234"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET an unknown file: %d, want 404", resp.StatusCode)
	}
	if resp, _ := get(t, h, "POST", "/ui/", "gw.example", "10.0.0.1:1234"); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /ui/: %d, want 405", resp.StatusCode)
	}
}

// dev's token goes only to a loopback peer that names a loopback host;
// serve's page gets none and asks for one.
func TestConfig(t *testing.T) {
	t.Parallel()
	dev := Handler(Options{DevToken: "tok"})
	for _, tc := range []struct {
		h            http.Handler
		host, remote string
		status       int
		token        string
	}{
		{dev, "127.0.0.1:7070", "127.0.0.1:5555", 200, "tok"},
		{dev, "localhost:7070", "[::1]:5555", 200, "tok"},
		{dev, "evil.example:7070", "127.0.0.1:5555", 403, ""}, // DNS rebinding
		{dev, "127.0.0.1:7070", "192.0.2.7:5555", 403, ""},    // another machine
		{Handler(Options{}), "gw.example", "192.0.2.7:5555", 200, ""},
	} {
		resp, body := get(t, tc.h, "GET", "/ui/config.json", tc.host, tc.remote)
		var c struct{ Mode, Token string }
		_ = json.Unmarshal([]byte(body), &c)
		if resp.StatusCode != tc.status || c.Token != tc.token || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("config for Host %s from %s: %d %s; want %d with token %q, not cached", tc.host, tc.remote, resp.StatusCode, body, tc.status, tc.token)
		}
	}
}
