package ttl

import "time"

// RenewBefore is the customTime before which GC renews a keeper now (the
// effective policy's retention minus margin). A keeper whose customTime is
// at or after it needs nothing before GC's next passes, which renew it in
// time however old it becomes; one before it may need renewing at once
// (RenewToplevels). Safe for concurrent use.
func (g *GC) RenewBefore() time.Time { return g.policy().RenewBefore(g.now()) }
