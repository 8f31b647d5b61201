package objstore

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// Signer signs V4 URLs (GOOG4-RSA-SHA256) of objects in one bucket, so a
// client can upload or read an object straight from Cloud Storage with
// the gateway's authority but without its CPU. It signs with a service
// account's RSA key, the same algorithm as the storage client's SignedURL,
// but on the injected clock: against tracegw dev the emulator's clock may
// run days ahead of the host's, and it checks expiry by its own. Safe for
// concurrent use.
type Signer struct {
	accessID string // the service account e-mail: the credential's first part
	key      *rsa.PrivateKey
	scheme   string // https, or http for an emulator
	host     string // host[:port] of the XML API
	bucket   string
}

// MaxSignedExpiry is the longest validity V4 signing allows (7 days).
const MaxSignedExpiry = 7 * 24 * time.Hour

// NewSigner returns a Signer for bucket with the RSA key in keyFile: a PEM
// private key (PKCS #1 or #8) or a service account's JSON key file, whose
// client_email is the access ID when accessID is empty. endpoint is the
// XML API's base URL ("" for Cloud Storage; an emulator's http://host:port).
func NewSigner(keyFile, accessID, endpoint, bucket string) (*Signer, error) {
	key, accessID, err := LoadSigningKey(keyFile, accessID)
	if err != nil {
		return nil, err
	}
	if endpoint == "" {
		endpoint = DefaultXMLEndpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("signing endpoint %q: not an http(s) URL", endpoint)
	}
	return &Signer{accessID: accessID, key: key, scheme: u.Scheme, host: u.Host, bucket: bucket}, nil
}

// LoadSigningKey reads keyFile as NewSigner does and returns the key and
// the access ID (accessID, or the JSON key file's client_email).
func LoadSigningKey(keyFile, accessID string) (*rsa.PrivateKey, string, error) {
	b, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("signing key: %w", err)
	}
	pemBytes := b
	var sa struct {
		PrivateKey  string `json:"private_key"`
		ClientEmail string `json:"client_email"`
	}
	if json.Unmarshal(b, &sa) == nil && sa.PrivateKey != "" {
		pemBytes = []byte(sa.PrivateKey)
		if accessID == "" {
			accessID = sa.ClientEmail
		}
	}
	key, err := ParseRSAKey(pemBytes)
	if err != nil {
		return nil, "", fmt.Errorf("signing key %s: %w", keyFile, err)
	}
	if accessID == "" {
		return nil, "", errors.New("signing key: the access ID (service account e-mail) is required with a PEM key")
	}
	return key, accessID, nil
}

// LoadOrCreateSigningKey reads the PEM RSA key at path, or creates one
// there (2048 bits, mode 0600) when the file does not exist: dev's key,
// shared by the gateway that signs and the emulator that checks.
func LoadOrCreateSigningKey(path string) (*rsa.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return ParseRSAKey(b)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	out := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	if err := os.WriteFile(path, out, 0o600); err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return key, nil
}

// ParseRSAKey reads an RSA private key in PEM (PKCS #1 or #8).
func ParseRSAKey(pemBytes []byte) (*rsa.PrivateKey, error) {
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS1PrivateKey(blk.Bytes); err == nil {
		return k, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("not an RSA private key: %w", err)
	}
	rk, ok := k.(*rsa.PrivateKey)
	if !ok {
		return nil, errors.New("not an RSA private key")
	}
	return rk, nil
}

// Sign returns a V4 signed URL for method on key, valid from now for
// expires, that requires exactly headers (lower-case names; sent by the
// client with these values, each covered by the signature). Errors only
// for an expiry outside (0, MaxSignedExpiry] or a failed signature.
func (s *Signer) Sign(method, key string, headers map[string]string, now time.Time, expires time.Duration) (string, error) {
	if expires <= 0 || expires > MaxSignedExpiry {
		return "", fmt.Errorf("sign %s: expiry %s outside (0, 7 days]", key, expires)
	}
	now = now.UTC()
	stamp := now.Format("20060102T150405Z")
	scope := now.Format("20060102") + "/auto/storage/goog4_request"
	path := "/" + url.PathEscape(s.bucket)
	for _, seg := range strings.Split(key, "/") {
		path += "/" + url.PathEscape(seg)
	}
	hostname := s.host
	if h, _, ok := strings.Cut(s.host, ":"); ok {
		hostname = h // signed without the port, as the storage client does
	}
	all := map[string]string{"host": hostname}
	for k, v := range headers {
		all[strings.ToLower(k)] = v
	}
	names := make([]string, 0, len(all))
	for k := range all {
		names = append(names, k)
	}
	sort.Strings(names)
	signed := strings.Join(names, ";")
	q := url.Values{
		"X-Goog-Algorithm":     {"GOOG4-RSA-SHA256"},
		"X-Goog-Credential":    {s.accessID + "/" + scope},
		"X-Goog-Date":          {stamp},
		"X-Goog-Expires":       {strconv.Itoa(int(expires / time.Second))},
		"X-Goog-SignedHeaders": {signed},
	}
	var canon strings.Builder
	canon.WriteString(method + "\n" + path + "\n" + strings.ReplaceAll(q.Encode(), "+", "%20") + "\n")
	for _, n := range names {
		canon.WriteString(n + ":" + strings.Join(strings.Fields(all[n]), " ") + "\n")
	}
	canon.WriteString("\n" + signed + "\nUNSIGNED-PAYLOAD")
	reqHash := sha256.Sum256([]byte(canon.String()))
	toSign := sha256.Sum256([]byte("GOOG4-RSA-SHA256\n" + stamp + "\n" + scope + "\n" + hex.EncodeToString(reqHash[:])))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, toSign[:])
	if err != nil {
		return "", fmt.Errorf("sign %s: %w", key, err)
	}
	q.Set("X-Goog-Signature", hex.EncodeToString(sig))
	return s.scheme + "://" + s.host + path + "?" + q.Encode(), nil
}

// SignCreate signs a create-only PUT of key: the URL, valid from now for
// ttl, and the headers the request must carry, each signed, so the object
// is created exactly as Create would write it (if absent, with o's
// customTime, content type and encoding and metadata) and holds 1 to
// maxSize bytes.
func (s *Signer) SignCreate(key string, o traces.NewObject, maxSize int64, now time.Time, ttl time.Duration) (string, map[string]string, error) {
	h := map[string]string{
		"x-goog-if-generation-match":  "0",
		"x-goog-content-length-range": "1," + strconv.FormatInt(maxSize, 10),
	}
	if o.ContentType != "" {
		h["content-type"] = o.ContentType
	}
	if o.ContentEncoding != "" {
		h["content-encoding"] = o.ContentEncoding
	}
	if !o.CustomTime.IsZero() {
		h["x-goog-custom-time"] = o.CustomTime.UTC().Format(time.RFC3339)
	}
	for k, v := range o.Metadata {
		h["x-goog-meta-"+strings.ToLower(k)] = v
	}
	u, err := s.Sign("PUT", key, h, now, ttl)
	if err != nil {
		return "", nil, err
	}
	return u, h, nil
}
