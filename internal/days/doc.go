// Package days is the one grammar of the durations tracegw takes and
// prints: a Go duration ("90m", "1h30m") with an optional leading day count
// ("7d", "1d12h", "1.5d"), because retention is counted in days and
// time.ParseDuration has no day unit. Every flag and TRACEGW_ variable that
// holds a duration parses with Parse, and ttl prints with Format, so what
// tracegw prints it also accepts. The emulator, which imports nothing of
// tracegw, keeps a copy of Parse (emulator.ParseDuration); one table test
// here holds both to the same answers. It imports only the standard
// library.
package days
