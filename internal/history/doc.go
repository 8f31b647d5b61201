// Package history checks tracegw's retention promise with seeded random
// histories of concurrent operations, in the spirit of FoundationDB's
// simulation and Jepsen's checkers. The promise: at every moment, every
// trace that is held, or among the newest keep traces of a live toplevel it
// touches, or younger than the retention since its last customTime, exists
// and can be read; and nothing else outlives the retention.
//
// The test (history_test.go) wires the real system in process — PostgreSQL,
// the GCS emulator and its clock, the save, hold and canvas services, GC,
// and the notification consumer behind a chaos relay that delays,
// duplicates and reorders GCS's notifications — and runs histories: rounds
// of operations started together (saves, resaves, replaces, layers, imports
// of old traces with their own timestamps, holds with and without an end,
// releases, per-canvas keep-N changes, toplevel and canvas deletions, GC
// passes that may be killed midway, reads, lists), clock advances alone in
// their round, with injected
// GCS 503s, lost GCS answers and database failures before or after a
// commit. Each history ends with a quiescence phase: faults off, failed
// calls retried until they succeed, ambiguous holds settled, notifications
// flushed, then weeks of clock with GC. A seed fixes the operations; the
// interleavings vary.
//
// The package's non-test files hold the reference model (model.go) and its
// checks (check.go). The model records every finished call with its window on the
// emulator's clock and its outcome, and snapshots of the bucket (every trace
// and layer object with its generation, customTime, hold and the toplevels
// its content names) and of the index's trace rows, taken when nothing runs.
// A failed call is indeterminate: it may or may not have taken effect. Every
// judgement is made so that it holds under every reading of the history
// (every failed call taken or not, every overlap ordered either way), so a
// reported violation is definite:
//
//   - Committed: a trace is one tracegw must have if an acknowledged save,
//     resave or replace of it ended and its object was never seen absent and
//     no canvas deletion ran since. A replace that failed but whose object
//     landed leaves no gap: the object at the key is the trace (what reads
//     return), so its content is what the trace touches.
//   - Touches: certainly, the object's content and the layers reads certainly
//     merge (written for the object's generation, numbered at most the
//     highest acknowledged layer of it: the index counts at least that many);
//     possibly, the content and every layer written for the generation.
//   - Live: certainly, if never reported deleted by a call of any outcome, or
//     named by an acknowledged write of a trace whose timestamp is more than
//     Slack after every such call; certainly dead, if an acknowledged
//     deletion had no possible revival (no write of any outcome naming it for
//     a trace timestamped later than Slack before it) and no canvas deletion
//     ran since.
//   - Held: certainly, if an acknowledged hold began after every release call
//     had ended, and only until the earliest end the hold may have: its own,
//     or one a hold call that may come after it gives (a call giving no end
//     keeps the end of any hold call that may precede it); certainly not, if
//     no hold was ever attempted or an acknowledged release began after every
//     hold call had ended. Ended by E: every hold call not followed by an
//     acknowledged release or end-setting hold gave an end, the latest E.
//   - Keep-N of a canvas at a moment: every value possibly in force — the
//     last acknowledged change's, and that of every change of any outcome
//     that may come after it (the default if none, or after a canvas
//     deletion). A keeper is judged under the smallest, a possible keeper
//     under the largest.
//
// The checks, and why each cannot fire falsely:
//
//   - keep (CheckStep): a committed trace object present before a clock step
//     and gone after it was protected — its customTime was less than the
//     retention old at the end of the step (the lifecycle rule deletes only
//     older objects), or so was the customTime its first save or import
//     certainly gave it (an import's is its timestamp), or it was certainly
//     held (held objects are never deleted), or it was certainly held until
//     a moment less than the retention before the step's end (GC ends a hold
//     as a release does, with a fresh retention), or it was certainly a
//     keeper of a certainly live toplevel both after the previous step and
//     before this one (so GC, which runs before every lifecycle sweep, had a
//     pass to learn of it), under the smallest keep-N possibly in force when
//     the step began (an acknowledged raise renews, or leaves marked due for
//     the step's first GC pass, every trace it makes a keeper): it certainly
//     touches the toplevel and fewer than keep trace objects newer than it
//     possibly touch it (orphans counted too, so the ranking can only be
//     too generous); or an acknowledged import since the previous step made
//     it such a keeper, counting every newer trace that possibly touched the
//     toplevel at any moment since (an import renews the keepers of what it
//     touches before it answers). Nothing else deletes trace objects during
//     a step.
//   - keep-layer (CheckStep): while such a kept or held trace's object
//     stays, a layer reads certainly merge is gone; or a layer is gone whose
//     own customTime was younger than the retention.
//   - vanished (CheckBetween): with no clock step since the last snapshot, a
//     committed trace object, or an acknowledged layer of the generation its
//     trace still has, is gone; nothing but a canvas deletion deletes them
//     then.
//   - readable (CheckSnapshot): a committed trace's object, or one at a
//     generation an acknowledged write returned, is present but its index
//     rows are gone, so reads answer 404 and lists omit it.
//   - released (CheckSnapshot): a trace object is held although its trace
//     is certainly unheld (an acknowledged release began after every hold
//     call had ended, or it was never held): a release must be complete
//     when it answers, also a retry of one that failed midway, not only
//     after the repair step. Layers are left to hold-leak: a layer add
//     racing the release may leave one held for the repair step.
//   - canvas-deleted (CheckSnapshot): an object of a trace written only
//     before an acknowledged canvas deletion began survived it.
//   - expire, expire-layer (CheckFinal): after quiescence (no customTime
//     any call set is younger than the retention) an object remains although
//     its trace is certainly not held (released, never held, or every hold
//     it may have ended more than a GC interval before) and no toplevel
//     possibly keeps it: for every toplevel it possibly touches that is not
//     certainly dead, at least keep committed newer traces certainly touch
//     it, keep the largest keep-N possibly in force in the last retention
//     period; or a layer of no generation its trace has remains, its trace
//     certainly not held. An old imported trace that keeps nothing is held
//     to this like any other.
//   - hold-leak (CheckFinal): an object is held although its trace was
//     certainly released or never held.
//   - hold-end (CheckStep, CheckFinal): an object is held after a clock
//     step that began after every hold of its trace had certainly ended
//     (each step runs GC passes, which release ended holds), or after
//     quiescence more than a GC interval past that end.
//   - index-row (CheckFinal): index rows remain whose object is gone, after
//     every notification was delivered and GC ran for weeks.
//   - read (final, in the test): a committed trace fails to read through the
//     service, reads another generation, or lacks a layer reads certainly
//     merge; a listed trace whose object is gone does not answer 404 and
//     leave the index.
//
// What the harness cannot see: GCS may apply the lifecycle rule at any
// moment, but the emulator's sweeps run only in clock steps, after a GC
// pass; so a save, import or keep raise that marks toplevels due but skips
// its own immediate renewal goes unnoticed here (their own tests cover
// that).
//
// TestBenignHistories runs histories with every feature that reaches a
// known bug masked (saves, reads, lists, clock steps and canvas deletions
// only) and must find nothing: a guard against false positives of the
// checks themselves.
//
// The checks assume the emulator's lifecycle rule deletes exactly when
// daysSinceCustomTime is reached and only during clock steps, and that
// generations grow (the emulator's are microsecond timestamps, as in GCS).
package history
