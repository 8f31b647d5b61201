// Package notify keeps the index exact when Cloud Storage deletes trace
// objects: Consumer applies GCS deletion notifications from a Pub/Sub
// subscription, and Reconcile repairs the index in bulk when notifications
// were lost. It imports only traces and index (plus libraries); the
// *pubsub.Message stays inside the consumer, and the only writes to Cloud
// Storage are best-effort deletions of a removed trace's layer objects.
//
// # Decisions
//
// Decide is the pure rule for one notification (table-tested): an
// OBJECT_DELETE of {canvasID}/traces/{traceID} removes that trace's rows if
// they describe objectGeneration or an older generation — so a late delete
// of generation 1 leaves the rows of generation 2 alone — and one carrying
// overwrittenByGeneration (an overwrite) removes nothing. Layer deletions,
// unmatched requests ("404s"), other event types, other buckets and names
// outside the layout are ignored with a Reason; a message missing the
// required attributes is Malformed. Both are acked, never retried.
//
// OBJECT_ARCHIVE is treated exactly like OBJECT_DELETE: GCS sends it
// instead of a delete when the bucket is versioned and the live version
// becomes noncurrent, after which reading the name finds nothing, just as
// after a delete. So a bucket that somebody switched to versioning keeps a
// correct index (provided its notification config also selects
// OBJECT_ARCHIVE), although noncurrent versions are billed until deleted;
// setup-bucket turns versioning off.
//
// # Consumer
//
//	client, _ := pubsub.NewClient(ctx, project) // honours PUBSUB_EMULATOR_HOST
//	c, err := notify.New(notify.Subscription(client.Subscriber(sub), notify.DefaultMaxOutstanding), db, gcs, bucket, notify.Options{
//		Logger: log, Registerer: reg, Now: clock.Now,
//	})
//	err = c.Run(ctx) // nil on a clean stop
//
// Deletions are collected into batches (MaxBatch, default 1000, or what
// arrived within MaxWait, default 50 ms, of the batch's first message) and
// applied in one transaction (index.DB.RemoveManyWithLayers); the batch's
// messages are acked only after the commit, and all nacked if it fails
// (they come back; the consumer backs off up to 2 s between failed
// batches). Duplicates and any order are harmless, because removal is
// idempotent and bounded by generation. Ignored and malformed messages are
// acked at once, counted, and logged once with their message_id
// (malformed at Warn, foreign bucket or name at Info, the routine rest at
// Debug). After a commit, the layer objects 1..n of each removed trace
// are deleted through the layerDeleter (*objstore.GCS); a missing object is
// fine, and one that cannot be deleted is logged and left to the lifecycle
// rule, as are those pending when Run stops and ShutdownTimeout passes.
// Unmatched-request deletions can be routed to Options.Unmatched once they
// have index rows of their own.
//
// # Flow control
//
// The settings suit real Pub/Sub, which delivers thousands of messages a
// second over one streaming pull, so the consumer, not the transport, has
// to be the part that never waits:
//
//   - MaxOutstandingMessages is DefaultMaxOutstanding (4000, four batches):
//     one batch commits while the next fills and the stream keeps
//     delivering; fewer would stall the stream during every commit, more
//     would only hold messages whose leases the client must keep extending.
//     MaxOutstandingBytes stays at the client's 1 GB (notifications are
//     about 1 KiB).
//   - A batch is MaxBatch (1000) deletions or what arrived within MaxWait
//     (50 ms) of its first: one transaction per batch keeps PostgreSQL at
//     about 100,000 deletions/s, and 50 ms bounds the lag added at low
//     rates.
//   - Acks follow the commit; the client extends every outstanding
//     message's lease (MaxExtension 60 min, the subscription's ack deadline
//     60 s) until then, and ApplyTimeout (30 s) keeps a commit well inside
//     one deadline. A failed commit nacks its batch, which Pub/Sub
//     redelivers; removal is idempotent.
//   - NumGoroutines stays 1: one stream already delivers faster than a
//     transaction applies, and handlers only decide and enqueue.
//
// The bench measures the consumer's own ceiling with the in-process Queue
// (decode, decide, batch, commit, ack) and, on the official Pub/Sub
// emulator, the consumer against a bare Receive that only acks.
//
// Received and Applied are atomic counters: `tracegw dev` waits until
// Applied reaches the number of notifications the emulator published.
// Prometheus series (on the registry passed in): tracegw_notify_received_total,
// _applied_total, _ignored_total{reason}, _malformed_total, _nacked_total,
// _traces_removed_total, _layers_deleted_total, _layer_delete_errors_total,
// and the histograms tracegw_notify_batch_size and tracegw_notify_lag_seconds
// (eventTime to commit).
//
// EnsureSubscription creates the topic and a subscription that never
// expires, retains messages 7 days and has a 60 s ack deadline, for dev and
// tests. SetupPubSub (tracegw setup-bucket) makes the production path
// idempotently — the same subscription plus a retry backoff, a
// dead-letter topic with its own subscription, and the service agents'
// IAM bindings — reporting each change; CheckSubscription is serve's
// start-up check (a missing subscription names setup-bucket, drift is
// reported line by line).
//
// # Reconcile
//
// Reconcile compares the bucket listing with the index, one canvas or all,
// in keyset batches on both sides: it removes the rows of traces whose
// object is gone (each confirmed by a Stat, so a trace saved while the
// listing ran is never touched), and reports objects without index rows
// (they expire on their own) and objects without customTime (they never
// expire). See ReconcileReport.
package notify
