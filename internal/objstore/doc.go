// Package objstore is the Cloud Storage adapter: it wraps
// cloud.google.com/go/storage, returns traces.ObjectInfo, and translates the
// client's errors into the traces sentinels once (not found, precondition
// failed, held, unavailable). Nothing outside it sees a storage type. The
// hot path of a save, a create-only write, and finalize's read go as single
// XML API requests over plain HTTP when UseXMLUploads is set (xml.go), and
// Signer signs V4 URLs for direct uploads (signer.go).
package objstore
