// Package wire holds the pieces of the gateway's wire format that the Go
// client builds its documents from: a bounded msgpack reader, the append
// helpers that write the smallest encoding of each value, and UUIDs
// (canonical text form, UUIDv7 generation). It knows nothing of traces or
// HTTP and imports only the standard library, so the client module stays
// free of the server's code and dependencies.
package wire
