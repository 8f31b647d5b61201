// Package clientcompat holds no code, only tests: the Go client (the
// separate module in client/) against this module's real gateway and
// codec. The client module cannot import the server's packages, so what
// proves that the two agree on the wire lives here: every client call
// against a gateway backed by PostgreSQL and the emulator, and the client's
// request bodies and answer decoding compared byte for byte with the
// server's own encoders and decoders.
package clientcompat
