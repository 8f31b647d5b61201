package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/tracegw/tracegw/internal/days"
)

// The control routes move the clock (deleting whatever expires) and break
// the storage API on purpose, with no credentials. A web page the developer
// visits must not be able to use them, neither by a cross-site form or
// fetch nor by DNS rebinding; so every control route checks that the Host
// is a loopback name, and every route that changes state needs
// ControlHeader, which a browser only sends cross-site after a CORS
// preflight that these routes never approve.

// ControlHeader must be sent (with the value "1") on every control request
// that changes state: POST /_emulator/clock/advance, POST and DELETE
// /_emulator/faults.
const ControlHeader = "X-Tracegw-Emulator"

// Bounds of one control request.
const (
	// MaxAdvance is the longest one advance may move the clock.
	MaxAdvance = 400 * 24 * time.Hour
	// MaxFaultCount is the most calls one fault rule may fail.
	MaxFaultCount = 1000
	// maxFaultRules is how many fault rules may wait at once.
	maxFaultRules = 100
	// maxControlBody bounds a control request's body.
	maxControlBody = 4 << 10
)

// loopbackHost reports whether host (a Host header, with or without a
// port) names the local machine: localhost, 127.0.0.1 or [::1].
func loopbackHost(host string) bool {
	h := host
	if sh, _, err := net.SplitHostPort(host); err == nil {
		h = sh
	}
	switch strings.TrimSuffix(strings.ToLower(h), ".") {
	case "localhost", "127.0.0.1", "::1", "[::1]":
		return true
	}
	return false
}

// serveControl serves the /_emulator/ routes.
func (e *Emulator) serveControl(w http.ResponseWriter, r *http.Request) {
	if !loopbackHost(r.Host) {
		writeControlError(w, http.StatusForbidden, "permission_denied", "Host",
			"the emulator's control routes answer only to a loopback Host (localhost, 127.0.0.1, [::1])")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Header.Get(ControlHeader) != "1" {
		writeControlError(w, http.StatusForbidden, "permission_denied", ControlHeader,
			"send the header "+ControlHeader+": 1 with every control request that changes state")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxControlBody)
	switch p := strings.TrimSuffix(r.URL.Path, "/"); {
	case p == "/_emulator/clock" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, map[string]time.Time{"now": e.Now()})
	case p == "/_emulator/clock/advance" && r.Method == http.MethodPost:
		by := r.URL.Query().Get("by")
		d, err := days.Parse(by)
		if err != nil || d < 0 || d > MaxAdvance {
			writeControlError(w, http.StatusBadRequest, "invalid_argument", "by",
				fmt.Sprintf("by=%.40q: want a duration from 0 to 400d, like 72h, 30d or 1d12h", by))
			return
		}
		sum, err := e.Advance(r.Context(), d)
		if err != nil {
			e.log.Error("advance", "err", err)
			writeControlError(w, http.StatusInternalServerError, "internal", "", "advance failed: see the log")
			return
		}
		writeJSON(w, http.StatusOK, sum)
	case p == "/_emulator/faults" && r.Method == http.MethodPost:
		var f struct {
			Kind   string `json:"kind"`
			Count  int    `json:"count"`
			Status int    `json:"status"`
		}
		if err := json.NewDecoder(r.Body).Decode(&f); err != nil {
			writeControlError(w, http.StatusBadRequest, "invalid_argument", "body", `want {"kind","count","status"} (JSON, at most 4 KiB)`)
			return
		}
		if err := e.faults.add(f.Kind, f.Count, f.Status); err != nil {
			var fe *faultError
			field := ""
			if errors.As(err, &fe) {
				field = fe.field
			}
			writeControlError(w, http.StatusBadRequest, "invalid_argument", field, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"kind": f.Kind, "count": f.Count, "status": e.faults.statusOr(f.Status)})
	case p == "/_emulator/faults" && r.Method == http.MethodDelete:
		e.faults.clear()
		w.WriteHeader(http.StatusNoContent)
	default:
		writeControlError(w, http.StatusNotFound, "not_found", "", fmt.Sprintf("unknown emulator route %s %.80s", r.Method, r.URL.Path))
	}
}

// writeControlError answers a control route in tracegw's error model
// ({"error":{"code","message","field"}}), since dev serves these routes
// beside tracegw's API; the storage routes keep GCS's error shape.
func writeControlError(w http.ResponseWriter, status int, code, field, msg string) {
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
		Field   string `json:"field,omitempty"`
	}
	writeJSON(w, status, map[string]body{"error": {Code: code, Message: msg, Field: field}})
}
