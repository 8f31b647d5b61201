package emulator_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tracegw/tracegw/emulator"
)

// TestControlRoutesGuarded: what a web page could send (a cross-site
// "simple" request with no custom header, or any request under a foreign
// Host after DNS rebinding) cannot move the clock or inject faults, and
// values are bounded; every refusal is tracegw's JSON error naming the
// field.
func TestControlRoutesGuarded(t *testing.T) {
	t.Parallel()
	v := newEnv(t, emulator.Options{Step: 24 * time.Hour})
	port := strings.TrimPrefix(v.URL, "http://127.0.0.1")
	// send sends a request; hdr is the value of ControlHeader ("": none).
	send := func(method, path, host, ct, body, hdr string) (int, string, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), method, v.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		if hdr != "" {
			req.Header.Set(emulator.ControlHeader, hdr)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode < 300 {
			return resp.StatusCode, "", ""
		}
		var e struct {
			Error struct{ Code, Message, Field string }
		}
		if err := json.Unmarshal(b, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
			t.Errorf("%s %s: body %s is not tracegw's JSON error", method, path, b)
		}
		return resp.StatusCode, e.Error.Code, e.Error.Field
	}
	before := v.E.Now()
	faultJSON := `{"kind":"any","count":1}`
	for _, tc := range []struct {
		name, method, path, host, ct, body string
		hdr                                string
		status                             int
		code, field                        string
	}{
		{"advance: a simple cross-site POST", "POST", "/_emulator/clock/advance?by=109500d", "", "text/plain", "", "", 403, "permission_denied", emulator.ControlHeader},
		{"advance: a form POST", "POST", "/_emulator/clock/advance?by=8d", "", "application/x-www-form-urlencoded", "by=8d", "", 403, "permission_denied", emulator.ControlHeader},
		{"advance: header with another value", "POST", "/_emulator/clock/advance?by=8d", "", "", "", "true", 403, "permission_denied", emulator.ControlHeader},
		{"advance: rebound Host", "POST", "/_emulator/clock/advance?by=8d", "evil.example" + port, "", "", "1", 403, "permission_denied", "Host"},
		{"advance: Host without a port", "POST", "/_emulator/clock/advance?by=8d", "attacker.test", "", "", "1", 403, "permission_denied", "Host"},
		{"advance: 300 years", "POST", "/_emulator/clock/advance?by=109500d", "", "", "", "1", 400, "invalid_argument", "by"},
		{"advance: 401 days", "POST", "/_emulator/clock/advance?by=401d", "", "", "", "1", 400, "invalid_argument", "by"},
		{"advance: overflowing duration", "POST", "/_emulator/clock/advance?by=99999999999d", "", "", "", "1", 400, "invalid_argument", "by"},
		{"faults: simple POST", "POST", "/_emulator/faults", "", "text/plain", faultJSON, "", 403, "permission_denied", emulator.ControlHeader},
		{"faults: rebound Host", "POST", "/_emulator/faults", "evil.example" + port, "application/json", faultJSON, "1", 403, "permission_denied", "Host"},
		{"faults: count too large", "POST", "/_emulator/faults", "", "application/json", `{"kind":"any","count":1001}`, "1", 400, "invalid_argument", "count"},
		{"faults: status not an error", "POST", "/_emulator/faults", "", "application/json", `{"kind":"any","count":1,"status":200}`, "1", 400, "invalid_argument", "status"},
		{"faults: status beyond 599", "POST", "/_emulator/faults", "", "application/json", `{"kind":"any","count":1,"status":600}`, "1", 400, "invalid_argument", "status"},
		{"faults: unknown kind", "POST", "/_emulator/faults", "", "application/json", `{"kind":"` + strings.Repeat("x", 1000) + `","count":1}`, "1", 400, "invalid_argument", "kind"},
		{"faults: body over 4 KiB", "POST", "/_emulator/faults", "", "application/json", `{"kind":"any","count":1,"x":"` + strings.Repeat("x", 5000) + `"}`, "1", 400, "invalid_argument", "body"},
		{"faults: DELETE without the header", "DELETE", "/_emulator/faults", "", "", "", "", 403, "permission_denied", emulator.ControlHeader},
		{"clock: read under a rebound Host", "GET", "/_emulator/clock", "evil.example" + port, "", "", "", 403, "permission_denied", "Host"},
		{"unknown route", "POST", "/_emulator/nope", "", "", "", "1", 404, "not_found", ""},
	} {
		status, code, field := send(tc.method, tc.path, tc.host, tc.ct, tc.body, tc.hdr)
		if status != tc.status || code != tc.code || field != tc.field {
			t.Errorf("%s: %d %s %q, want %d %s %q", tc.name, status, code, field, tc.status, tc.code, tc.field)
		}
	}
	if d := v.E.Now().Sub(before); d > time.Hour {
		t.Errorf("the refused requests moved the clock by %s", d)
	}
	if status, _ := v.do(t, http.MethodGet, v.objectPath("nothing"), nil); status != http.StatusNotFound {
		t.Errorf("a storage call after the refused fault requests: %d, want 404 (no fault injected)", status)
	}

	// What the developer's own tools send works, under every loopback name.
	for _, host := range []string{"", "localhost" + port, "LOCALHOST" + port, "[::1]" + port, "127.0.0.1"} {
		if status, code, field := send("POST", "/_emulator/clock/advance?by=1d", host, "", "", "1"); status != http.StatusOK {
			t.Errorf("advance with Host %q: %d %s %s, want 200", host, status, code, field)
		}
	}
	if status, _, _ := send("POST", "/_emulator/clock/advance?by=400d", "", "", "", "1"); status != http.StatusOK {
		t.Errorf("advance by the maximum 400d: %d, want 200", status)
	}
	if status, _, _ := send("GET", "/_emulator/clock", "", "", "", ""); status != http.StatusOK {
		t.Errorf("reading the clock needs no header: %d", status)
	}
	for i := range 100 {
		if status, code, field := send("POST", "/_emulator/faults", "", "application/json", `{"kind":"list","count":1}`, "1"); status != http.StatusOK {
			t.Fatalf("fault rule %d: %d %s %s", i, status, code, field)
		}
	}
	if status, _, field := send("POST", "/_emulator/faults", "", "application/json", `{"kind":"list","count":1}`, "1"); status != 400 || field != "count" {
		t.Errorf("fault rule 101: %d %s, want 400 naming count", status, field)
	}
}
