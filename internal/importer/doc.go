// Package importer is `tracegw import`: it reads trace documents, one a
// line (newline-delimited JSON in the API's JSON form, each with its
// canvasID and traceID), checks each with the gateway's own decoding rules
// and saves it through a running gateway's import mode (the Go client's
// Import), with bounded concurrency and a rate limit. A checkpoint file
// records which lines are done (not just how far the reader got, since
// lines finish out of order), so an interrupted run resumes without sending
// a finished line again or skipping one; a Summary counts what was
// imported, already present, conflicting and invalid, with line numbers.
// It talks to the gateway only through its Saver, and never reads flags or
// the environment (cmd does).
package importer
