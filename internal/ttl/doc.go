// Package ttl enforces the retention policy without deleting trace data
// itself: the bucket's lifecycle rule (SetupBucket, CheckBucket) deletes
// objects whose customTime is older than the retention, and GC renews the
// customTime of the keepers (the latest Policy.Keep traces of every live
// toplevel) before the rule can match them. Policy.Validate holds the safety
// arithmetic between retention, renew margin and GC interval.
//
// API for cmd/tracegw:
//
//	p := ttl.Policy{Retention: …, Margin: …, Interval: …, Keep: …} // or ttl.DefaultPolicy()
//	err := p.Validate()                      // serve and gc refuse an unsafe policy; messages name the flag
//	g, err := ttl.New(gcs, db, p, now, log, reg, ttl.Options{OnProgress: bar}) // gcs is *objstore.GCS
//	sum, err := g.Pass(ctx, dryRun)           // tracegw gc --once [--dry-run]
//	err = g.Run(ctx)                          // serve --run-gc: a pass now and every Interval
//	emu.SetHooks(emulator.Hooks{OnStep: g.Step}) // tracegw dev: GC on the emulator's clock
//	rep, err := ttl.SetupBucket(ctx, gcs, p, ttl.BucketOptions{Project: …, Topic: "projects/P/topics/T"}, dryRun)
//	drift, err := ttl.CheckBucket(ctx, gcs, p, topic) // serve: log each line as a warning
//
// Every write of renew_after is conditional on the toplevel's rev (see
// index.DB.SetRenewAfter), so a pass never overwrites a concurrent change
// of a toplevel's keepers, and renew_after never rises above a fresh
// trace's customTime minus index.RenewSlack.
//
// ttl imports only traces and index. It never deletes an object, and
// removes index rows only of a keeper whose object it found gone (and rows
// of toplevels with no traces).
package ttl
