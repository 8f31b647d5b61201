// Package client is the Go client of the tracegw HTTP API (described in
// the repository's api/openapi.yaml) for executors and tools: saving traces
// as msgpack, reading, listing, searching, replacing and layering them
// (with why each trace is kept and until when), holds (with an end),
// a canvas's keep-N and unmatched requests ("404s").
//
// A Client shares one http.Client whose Transport keeps connections alive
// (sized for 64 concurrent callers by default), so create one per gateway
// and reuse it. Failures come back as errors that match the sentinels of
// errors.go with errors.Is, and the gateway's answer is available as an
// *APIError with errors.As. Saves carry a UUIDv7 traceID chosen by the
// client, so they are retried on 503, 429 and network errors without ever
// storing a trace twice.
//
// The client is a module of its own, github.com/tracegw/tracegw/client,
// that imports none of the gateway's code: it writes and reads the wire
// format itself (internal/wire), and the gateway's module tests that it
// agrees with the server byte for byte. Importing it adds to a user's
// go.mod this module and, as indirect requirements, the msgpack library
// behind EncodeValue and Value.Decode:
//
//	github.com/vmihailenco/msgpack/v5 v5.4.1 // indirect
//	github.com/vmihailenco/tagparser/v2 v2.0.0 // indirect
//
// Its go line is 1.22, so it asks for no newer Go than that. `go list -m
// all` also shows the requirements of msgpack's own go.mod, which only its
// tests use (github.com/stretchr/testify v1.6.1, github.com/davecgh/go-spew
// v1.1.0, github.com/pmezard/go-difflib v1.0.0, gopkg.in/yaml.v3): their
// go.mod files are read, their code is never built into the program.
package client
