// Package canvases is what happens to a canvas and its toplevels as a whole:
// deleting a canvas (a resumable, lease-based background job that releases
// its holds, deletes every object under its prefix and then its index rows,
// after marking it deleted so no racing save can leave anything behind),
// forgetting a toplevel the editor deleted, and a canvas's own keep-N
// (Policy, SetPolicy: a raise renews the traces it newly keeps before it
// answers). It owns the jobs' goroutines; it never calls time.Now.
package canvases
