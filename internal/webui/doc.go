// Package webui is the trace browser served at /ui/: a small page, plain
// HTML, CSS and JavaScript embedded in the binary (no build step, nothing
// loaded from another host), that calls the /v1 API with an admin token to
// show a canvas's toplevels and their traces on a timeline, why each is
// kept and when it may expire, its input and function results, and holds;
// in tracegw dev it also drives the emulator's clock. It serves files and
// one small configuration document; it never reads traces itself.
package webui
