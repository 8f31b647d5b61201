// Package days is the one grammar of the durations tracegw takes and
// prints: a Go duration ("90m", "1h30m") with an optional leading day count
// ("7d", "1d12h", "1.5d"), because retention is counted in days and
// time.ParseDuration has no day unit. Every flag and TRACEGW_ variable that
// holds a duration parses with Parse, and so does the emulator's clock
// advance (?by=); ttl prints with Format, so what tracegw prints it also
// accepts. It imports only the standard library, so that the emulator,
// which imports nothing else of tracegw, can use it.
package days
