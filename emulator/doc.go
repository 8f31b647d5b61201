// Package emulator is a Cloud Storage emulator for tests and local work: it
// wraps fake-gcs-server's in-process fakestorage (filesystem backend, so
// writes stay O(1) and data survives restarts) with an HTTP layer that adds
// what real GCS does and the fake lacks: forward-only customTime,
// metageneration and preconditions on update, overwrite and delete, object
// holds, bucket lifecycle rules applied by a sweep, Pub/Sub notifications in
// GCS's exact format, an emulator-owned clock, and a fault switch. XML API
// uploads (PUT /{bucket}/{object}) honour x-goog-if-generation-match and
// x-goog-custom-time, keep a gzip body as sent and answer with
// x-goog-generation; with Options.SigningKey, V4 signed URLs are checked as
// GCS checks them (signed.go).
//
// It imports no tracegw package; callers reach it only through the GCS JSON
// API (Handler) and the hooks set with SetHooks. Control routes live under
// /_emulator/ on the same handler: GET /_emulator/clock,
// POST /_emulator/clock/advance?by=72h (Go durations plus a "d" day unit,
// at most MaxAdvance), POST and DELETE /_emulator/faults. They answer only
// to a loopback Host, and those that change state only with the header
// ControlHeader ("X-Tracegw-Emulator: 1"), so a web page cannot reach them;
// their errors use tracegw's {"error":{"code","message","field"}}. Beyond
// the agreed API it exports PublishFailures and KeepApplyingRules (GCS's
// delay in applying a lifecycle change, for tests).
//
// The fake stores content, hashes and generations; the emulator keeps the
// rest (metageneration, times on its clock, customTime, holds, metadata
// edits, bucket fields, notification configs, clock offset) in Dir as a
// snapshot plus an append-only journal, and serves object PATCH/PUT and
// bucket PATCH/PUT itself, because the fake's filesystem backend would give
// a patched object a new generation and its bucket update resets fields.
//
// Deliberate limits: object versioning is refused (400), so OBJECT_ARCHIVE
// never fires; SetStorageClass and AbortIncompleteMultipartUpload lifecycle
// actions are stored but not applied; object ACL edits go to the fake
// untouched; downloads keep the Content-Type recorded at upload. The
// filesystem backend cannot hold both "a" and "a/b", nor objects whose name
// ends in "/", and it fsyncs twice per write, which bounds uploads to a few
// hundred per second on a real disk (more on tmpfs).
package emulator
