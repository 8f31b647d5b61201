// Package client is the Go client of the tracegw HTTP API (API.md) for
// executors and tools: saving traces as msgpack, reading, listing, replacing
// and layering them, holds and unmatched requests ("404s").
//
// A Client shares one http.Client whose Transport keeps connections alive
// (sized for 64 concurrent callers by default), so create one per gateway
// and reuse it. Failures come back as errors that match the sentinels of
// errors.go with errors.Is, and the gateway's answer is available as an
// *APIError with errors.As. Saves carry a UUIDv7 traceID chosen by the
// client, so they are retried on 503, 429 and network errors without ever
// storing a trace twice.
package client
