// Package holds places, lists and releases holds on traces. A hold is GCS's
// temporaryHold on the trace object and each of its layers (the bucket then
// refuses to delete or overwrite them and the lifecycle rule skips them),
// recorded with its reason and time in the index. A release clears the flag
// and moves customTime to now in the same PATCH, so the trace gets a fresh
// full retention period instead of dying at the next lifecycle sweep.
//
// The index records the intent first, the objects follow: a hold or release
// writes the index row (and an operation token, see index.Token), then
// patches the trace object and its layers, then removes the token. So an
// object is never held without the index knowing (no hold leaks, the quota
// counts it), and a crash or a failed write anywhere leaves a token from
// which GC's repair step rolls the objects forward to what the index says
// (Conform). The index's held flag is never what keeps a keeper alive: GC
// renews keepers whether held or not.
//
// A hold may end by itself (Spec.Until or Spec.For, at most MaxHoldFor
// ahead): GC finds the ended holds across canvases (index.DB.EndedHolds)
// and calls ReleaseEnded, which releases a hold as Release does, only if
// its end has still come (a repeated hold may have moved it).
//
// "Execute handler" (replacing a held trace) is refused, not worked around:
// GCS answers 403 to an overwrite of a held object, and the replace refuses
// a trace the index says is held with traces.ErrHeld, which httpapi answers
// 409 failed_precondition with a message that says to release the hold
// first (or to add a layer of function results, which writes a new object
// and leaves the held one alone). A held trace is kept as the user pinned
// it.
//
// holds imports only traces and index; it never deletes objects and never
// calls time.Now (the clock is injected).
package holds
