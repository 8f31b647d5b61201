// Package holds places, lists and releases holds on traces. A hold is GCS's
// temporaryHold on the trace object and each of its layers (the bucket then
// refuses to delete or overwrite them and the lifecycle rule skips them),
// recorded with its reason and time in the index. A release clears the flag
// and moves customTime to now in the same PATCH, so the trace gets a fresh
// full retention period instead of dying at the next lifecycle sweep.
//
// Objects first, index second, and the object's state wins: the trace
// object is patched before its layers on both hold and release, so a crash
// anywhere leaves a trace object whose flag disagrees with the index (or
// with its layers), which a retry of the same call or Reconcile converges.
//
// "Execute handler" (replacing a held trace) is refused, not worked around:
// GCS answers 403 to an overwrite of a held object, objstore maps it to
// traces.ErrHeld and httpapi answers 409 failed_precondition with a message
// that says to release the hold first (or to add a layer of function
// results, which writes a new object and leaves the held one alone). A held
// trace is kept as the user pinned it.
//
// holds imports only traces and index; it never deletes objects and never
// calls time.Now (the clock is injected).
package holds
