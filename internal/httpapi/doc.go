// Package httpapi is tracegw's HTTP surface (api/openapi.yaml, explained
// in docs/api.md): routing, the auth
// middleware (tracegw's HS256 JWTs, optionally Google ID tokens of service
// accounts), content negotiation between msgpack and JSON, bounded body
// reading under a process-wide budget of body bytes in flight
// (inflight.go), request ids, and the one table that maps errors to statuses and
// stable codes (errors.go). Handlers only decode, call a service and encode;
// they hold no storage or SQL logic.
package httpapi
