package emulator

import (
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
)

// V4 signed URLs (GOOG4-RSA-SHA256), as Cloud Storage checks them: with
// Options.SigningKey set, a request carrying X-Goog-Signature is served
// only if the signature is the key's over the canonical request (method,
// path, query without the signature, every signed header with the value
// sent, UNSIGNED-PAYLOAD), the credential scope is
// {id}/{date}/{region}/storage/goog4_request with the date of X-Goog-Date,
// and the emulator's clock lies between X-Goog-Date and its expiry (at
// most 7 days). A signed x-goog-content-length-range bounds the body. The
// precondition, customTime, content type and encoding and metadata of an
// upload come from its (signed) headers, as for any XML API PUT. Without a
// key the signature is not checked.

// maxSignedExpiry is the longest X-Goog-Expires GCS accepts.
const maxSignedExpiry = 7 * 24 * time.Hour

// signedClockSkew is how far ahead of the emulator's clock X-Goog-Date may be.
const signedClockSkew = 15 * time.Minute

// errSigned is a refused signed request: status and GCS's error code.
type errSigned struct {
	status int
	code   string
	msg    string
}

func (e *errSigned) Error() string { return e.code + ": " + e.msg }

func signedErr(status int, code, format string, a ...any) error {
	return &errSigned{status, code, fmt.Sprintf(format, a...)}
}

// checkSigned verifies a request that carries a V4 signature. It returns
// nil for a request without one.
func (e *Emulator) checkSigned(r *http.Request) error {
	q := r.URL.Query()
	sig := q.Get("X-Goog-Signature")
	if sig == "" || e.opts.SigningKey == nil {
		return nil
	}
	if alg := q.Get("X-Goog-Algorithm"); alg != "GOOG4-RSA-SHA256" {
		return signedErr(http.StatusBadRequest, "InvalidArgument", "unsupported X-Goog-Algorithm %q", alg)
	}
	stamp := q.Get("X-Goog-Date")
	at, err := time.Parse("20060102T150405Z", stamp)
	if err != nil {
		return signedErr(http.StatusBadRequest, "InvalidArgument", "malformed X-Goog-Date %q", stamp)
	}
	parts := strings.Split(q.Get("X-Goog-Credential"), "/")
	if len(parts) != 5 || parts[1] != stamp[:8] || parts[2] == "" || parts[3] != "storage" || parts[4] != "goog4_request" {
		return signedErr(http.StatusBadRequest, "AuthorizationQueryParametersError", "credential %q is not {id}/%s/{region}/storage/goog4_request", q.Get("X-Goog-Credential"), stamp[:8])
	}
	if id := e.opts.SigningAccessID; id != "" && parts[0] != id {
		return signedErr(http.StatusForbidden, "AccessDenied", "credential %q is not %s", parts[0], id)
	}
	secs, err := strconv.Atoi(q.Get("X-Goog-Expires"))
	if err != nil || secs <= 0 || time.Duration(secs)*time.Second > maxSignedExpiry {
		return signedErr(http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Goog-Expires %q must be 1 to 604800 seconds", q.Get("X-Goog-Expires"))
	}
	now := e.Now()
	if now.Before(at.Add(-signedClockSkew)) {
		return signedErr(http.StatusBadRequest, "RequestNotYetValid", "signed for %s, now is %s", at.Format(time.RFC3339), now.Format(time.RFC3339))
	}
	if !now.Before(at.Add(time.Duration(secs) * time.Second)) {
		return signedErr(http.StatusBadRequest, "ExpiredToken", "the signed URL expired at %s", at.Add(time.Duration(secs)*time.Second).Format(time.RFC3339))
	}
	names := strings.Split(q.Get("X-Goog-SignedHeaders"), ";")
	if !sort.StringsAreSorted(names) || !contains(names, "host") {
		return signedErr(http.StatusBadRequest, "AuthorizationQueryParametersError", "X-Goog-SignedHeaders %q must be sorted and include host", q.Get("X-Goog-SignedHeaders"))
	}
	sigBytes, err := hex.DecodeString(sig)
	if err != nil {
		return signedErr(http.StatusBadRequest, "InvalidArgument", "X-Goog-Signature is not hex")
	}
	// The storage client signs the host without its port; a signer may
	// also sign it as sent.
	hosts := []string{r.Host}
	if h, _, ok := strings.Cut(r.Host, ":"); ok {
		hosts = []string{h, r.Host}
	}
	scope := strings.Join(parts[1:], "/")
	verified := false
	for _, host := range hosts {
		canon, err := canonicalRequest(r, names, host)
		if err != nil {
			return err
		}
		sum := sha256.Sum256([]byte(canon))
		toSign := sha256.Sum256([]byte("GOOG4-RSA-SHA256\n" + stamp + "\n" + scope + "\n" + hex.EncodeToString(sum[:])))
		if rsa.VerifyPKCS1v15(e.opts.SigningKey, crypto.SHA256, toSign[:], sigBytes) == nil {
			verified = true
			break
		}
	}
	if !verified {
		return signedErr(http.StatusForbidden, "SignatureDoesNotMatch", "the request signature does not match")
	}
	if contains(names, "x-goog-content-length-range") {
		lo, hi, ok := parseRange(r.Header.Get("X-Goog-Content-Length-Range"))
		if !ok {
			return signedErr(http.StatusBadRequest, "InvalidArgument", "malformed x-goog-content-length-range")
		}
		if r.ContentLength < 0 || r.ContentLength < lo || r.ContentLength > hi {
			return signedErr(http.StatusBadRequest, "EntityTooLarge", "body of %d bytes outside x-goog-content-length-range %d,%d", r.ContentLength, lo, hi)
		}
	}
	return nil
}

// canonicalRequest is V4's canonical request of r with the signed headers
// names and host as the host header's value.
func canonicalRequest(r *http.Request, names []string, host string) (string, error) {
	q := r.URL.Query()
	q.Del("X-Goog-Signature")
	var b strings.Builder
	b.WriteString(r.Method + "\n" + r.URL.EscapedPath() + "\n" + strings.ReplaceAll(q.Encode(), "+", "%20") + "\n")
	for _, n := range names {
		var v string
		switch n {
		case "host":
			v = host
		default:
			vs := r.Header.Values(n)
			if len(vs) == 0 {
				return "", signedErr(http.StatusBadRequest, "MissingSecurityHeader", "signed header %s was not sent", n)
			}
			v = strings.Join(vs, ",")
		}
		b.WriteString(n + ":" + strings.Join(strings.Fields(v), " ") + "\n")
	}
	b.WriteString("\n" + strings.Join(names, ";") + "\n")
	if v := r.Header.Get("X-Goog-Content-Sha256"); v != "" && contains(names, "x-goog-content-sha256") {
		b.WriteString(v)
	} else {
		b.WriteString("UNSIGNED-PAYLOAD")
	}
	return b.String(), nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// parseRange reads "min,max".
func parseRange(s string) (lo, hi int64, ok bool) {
	a, b, found := strings.Cut(s, ",")
	if !found {
		return 0, 0, false
	}
	lo, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
	hi, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
	return lo, hi, err1 == nil && err2 == nil && lo >= 0 && lo <= hi
}

// writeSignedError answers a refused signed request as the XML API does.
func writeSignedError(w http.ResponseWriter, err error) bool {
	var se *errSigned
	if !errors.As(err, &se) {
		return false
	}
	w.Header().Set("Content-Type", "application/xml; charset=UTF-8")
	w.WriteHeader(se.status)
	fmt.Fprintf(w, "<?xml version='1.0' encoding='UTF-8'?><Error><Code>%s</Code><Message>%s</Message></Error>", se.code, xmlEscape(se.msg))
	return true
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
