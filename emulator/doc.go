// Package emulator is a Cloud Storage emulator for tests and local work: it
// wraps fake-gcs-server's in-process fakestorage (filesystem backend, so
// writes stay O(1) and data survives restarts) with an HTTP layer that adds
// what real GCS does and the fake lacks: forward-only customTime,
// metageneration and preconditions on update, overwrite and delete, object
// holds, bucket lifecycle rules applied by a sweep, Pub/Sub notifications in
// GCS's exact format, an emulator-owned clock, and a fault switch.
//
// It imports no tracegw package; callers reach it only through the GCS JSON
// API (Handler) and the hooks set with SetHooks. Control routes live under
// /_emulator/ on the same handler: GET /_emulator/clock,
// POST /_emulator/clock/advance?by=72h (Go durations plus a "d" day unit),
// POST and DELETE /_emulator/faults.
//
// Deliberate limits: object versioning is refused (400), SetStorageClass and
// AbortIncompleteMultipartUpload lifecycle actions are stored but not applied,
// and object ACL edits are passed to the fake untouched. Downloads keep the
// Content-Type recorded at upload even if a PATCH changed it.
package emulator
