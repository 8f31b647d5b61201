// Package ttl enforces the retention policy without deleting trace data
// itself: the bucket's lifecycle rule (SetupBucket, CheckBucket) deletes
// objects whose customTime is older than the retention, and GC renews the
// customTime of the keepers (the latest keep-N traces of every live
// toplevel) before the rule can match them. Policy holds the safety
// arithmetic between retention, renew margin and GC interval.
//
// The bucket's rule is the one source of truth for retention: a managed GC
// (Options.Bucket) reads it every pass with the policy record in the index
// and runs under the policy Resolve derives, or refuses (ErrDisagree).
// Change (tracegw retention set) changes retention or keep-N through a
// transition that is safe while GCS may still apply the old rule. Every
// pass has a deadline of one interval and is recorded (metrics and the
// index's pass history) with the keeper deadline; ReadStatus and
// Status.Write are `tracegw status`.
//
// API for cmd/tracegw:
//
//	p := ttl.Policy{Retention: …, Margin: …, Interval: …, Keep: …} // or ttl.DefaultPolicy()
//	err := p.Validate()                      // serve and gc refuse an unsafe policy; errors name the field
//	g, err := ttl.New(gcs, db, p, now, log, reg, ttl.Options{Bucket: gcs, Replica: "host/pid"}) // gcs is *objstore.GCS
//	eff, err := g.Check(ctx)                 // serve --run-gc, gc: refuse to start on a disagreeing policy
//	sum, err := g.Pass(ctx, dryRun)           // tracegw gc --once [--dry-run]
//	err = g.Run(ctx)                          // serve --run-gc: a pass now and every Interval
//	g.SetWait(clock.Wait)                     // serve against an emulator: Run paced by its clock
//	emu.SetHooks(emulator.Hooks{OnStep: g.Step}) // tracegw dev: GC on the emulator's clock
//	rep, err := ttl.SetupBucket(ctx, gcs, p, ttl.BucketOptions{Project: …, Topic: "projects/P/topics/T"}, dryRun)
//	drift, err := ttl.CheckBucket(ctx, gcs, p, topic) // serve: log each line as a warning
//	rep, err := ttl.Change(ctx, gcs, db, p, now, log, ttl.ChangeRequest{Retention: 14 * ttl.Day}, ttl.ChangeOptions{})
//	s, err := ttl.ReadStatus(ctx, db, gcs, now); n := s.Write(w, ttl.StatusOptions{…})
//	ret, keep := g.CurrentPolicy(ctx)        // listings: why a trace is kept, until when (cached)
//	ttl.Options{Holds: holdsService}         // passes release holds whose end has come
//
// Every write of renew_after is conditional on the toplevel's rev (see
// index.DB.SetRenewAfter), so a pass never overwrites a concurrent change
// of a toplevel's keepers, and renew_after never rises above a fresh
// trace's customTime minus index.RenewSlack.
//
// ttl imports only traces, index and days (the duration grammar). It
// never deletes an object, and removes index rows only of a keeper whose
// object it found gone (and rows of toplevels with no traces).
package ttl
