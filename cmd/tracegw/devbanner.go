package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/tracegw/tracegw/emulator"
)

// What dev prints when it is up: its URL, an admin token, `export` lines
// for another shell and commands to try.

// printBanner prints dev's URL, its admin token, the exports and examples.
func (d *devSystem) printBanner(w io.Writer, url string) {
	fmt.Fprintf(w, "tracegw dev is running at %s\n", url)
	if d.token != "" {
		fmt.Fprintf(w, "admin token: %s\n", d.token)
	}
	auth := ""
	if d.token != "" {
		auth = ` -H "Authorization: Bearer $TOKEN"`
		fmt.Fprintf(w, "\n  export TOKEN=%s\n", d.token)
	}
	if d.dbURL != "" {
		fmt.Fprintf(w, "\nits parts, for tracegw status, gc, reconcile, migrate and retention (TRACEGW_ variables) and other tools, from another shell:\n")
		for _, line := range d.exports() {
			fmt.Fprintf(w, "  %s\n", line)
		}
		fmt.Fprintf(w, "  go run ./cmd/tracegw status\n")
	}
	canvas := "7d3f5a1c-0000-4000-8000-000000000001"
	fmt.Fprintf(w, "\ntry:\n  curl -s%s -H 'Content-Type: application/json' -d '{\"rootTLID\":\"1234\",\"input\":[[\"request\",{\"body\":\"hi\"}]]}' %s/v1/canvases/%s/traces\n", auth, url, canvas)
	fmt.Fprintf(w, "  curl -s%s %s/v1/canvases/%s/toplevels/1234/traces\n", auth, url, canvas)
	fmt.Fprintf(w, "  curl -s -X POST -H '%s: 1' '%s/_emulator/clock/advance?by=8d'\n", emulator.ControlHeader, url)
	fmt.Fprintf(w, "\ntrace browser: %s/ui/#canvas=%s\n\n", url, canvas)
}

// exports are the shell lines that point other commands and tools at this
// system: the index (TRACEGW_DATABASE_URL, and DATABASE_URL for psql and
// friends), the GCS emulator (TRACEGW_GCS_ENDPOINT for tracegw,
// STORAGE_EMULATOR_HOST for Google's client libraries) and, when
// notifications go through one, the Pub/Sub emulator; else a comment says
// they pass in memory.
func (d *devSystem) exports() []string {
	host := strings.TrimPrefix(strings.TrimPrefix(d.gcsEndpoint, "http://"), "https://")
	lines := []string{
		"export TRACEGW_DATABASE_URL=" + shellQuote(d.dbURL) + " DATABASE_URL=" + shellQuote(d.dbURL),
		"export TRACEGW_GCS_ENDPOINT=" + shellQuote(d.gcsEndpoint) + " STORAGE_EMULATOR_HOST=" + shellQuote(host) +
			" TRACEGW_BUCKET=" + shellQuote(d.bucket),
	}
	if d.queue == nil && d.pubsub != nil && d.pubsub.Addr != "" {
		lines = append(lines, "export PUBSUB_EMULATOR_HOST="+shellQuote(d.pubsub.Addr)+
			" TRACEGW_PUBSUB_PROJECT="+shellQuote(d.project)+" TRACEGW_SUBSCRIPTION="+shellQuote(d.subscription))
	} else {
		lines = append(lines, "# deletion notifications pass in memory, with no Pub/Sub for `tracegw notify` to read: "+
			"start dev with PUBSUB_EMULATOR_HOST set to route them through a Pub/Sub emulator")
	}
	return lines
}

// shellQuote quotes s for a POSIX shell unless it is plainly safe.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./:@-") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
