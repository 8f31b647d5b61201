// Package objstore is the Cloud Storage adapter: it wraps
// cloud.google.com/go/storage, returns traces.ObjectInfo, and translates the
// client's errors into the traces sentinels once (not found, precondition
// failed, held, unavailable). Nothing outside it sees a storage type.
package objstore
