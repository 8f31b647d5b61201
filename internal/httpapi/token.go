package httpapi

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/tracegw/tracegw/internal/traces"
)

// Token format (API.md's Auth): "tgw1." + base64url(payload) + "." +
// base64url(HMAC-SHA256(key, "tgw1." + base64url(payload))), unpadded, where
// payload is compact JSON {"r":"editor","c":"<canvas uuid>","e":<unix expiry>}
// ("c" absent for an unscoped token). The MAC covers the version prefix, so a
// later format cannot be replayed as this one.
const (
	tokenPrefix = "tgw1."
	// MaxTokenLen bounds a bearer token; longer ones are rejected before
	// any decoding (an honest token is about 150 bytes).
	MaxTokenLen = 1024
	// MinKeyLen is the shortest signing key accepted (256 bits).
	MinKeyLen = 32
)

// Claims is what a token grants.
type Claims struct {
	Role   Role
	Canvas *traces.CanvasID // nil: every canvas
	Expiry time.Time
}

type payload struct {
	R string `json:"r"`
	C string `json:"c,omitempty"`
	E int64  `json:"e"`
}

// Sign returns a token for claims signed with key. It is a pure function:
// the caller chooses the expiry.
func Sign(key []byte, c Claims) string {
	p := payload{R: RoleName(c.Role), E: c.Expiry.Unix()}
	if c.Canvas != nil {
		p.C = c.Canvas.String()
	}
	b, _ := json.Marshal(p) // strings and an int: cannot fail
	signed := tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return signed + "." + base64.RawURLEncoding.EncodeToString(mac(key, signed))
}

func mac(key []byte, signed string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(signed))
	return m.Sum(nil)
}

// ParseRole maps "executor", "editor" and "admin" to their Role.
func ParseRole(s string) (Role, error) {
	switch s {
	case "executor":
		return RoleExecutor, nil
	case "editor":
		return RoleEditor, nil
	case "admin":
		return RoleAdmin, nil
	}
	return RoleNone, fmt.Errorf("role %q: want executor, editor or admin", s)
}

// RoleName is the inverse of ParseRole ("none" for RoleNone).
func RoleName(r Role) string { return roleName(r) }

// HMACAuth authenticates HMAC-signed bearer tokens (see Sign). It is safe for
// concurrent use; Key and Now must not change after first use.
type HMACAuth struct {
	Key []byte
	Now func() time.Time // nil: time.Now
}

var _ Authenticator = (*HMACAuth)(nil)

// Authenticate checks the request's bearer token. Every failure wraps
// errUnauthenticated (401) with a message that never echoes the token.
func (a *HMACAuth) Authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 || h[0] == "" {
		return Principal{}, fmt.Errorf("missing bearer token (Authorization: Bearer <token>): %w", errUnauthenticated)
	}
	if len(h) > 1 {
		return Principal{}, fmt.Errorf("more than one Authorization header: %w", errUnauthenticated)
	}
	if len(h[0]) > len("Bearer ")+MaxTokenLen {
		return Principal{}, fmt.Errorf("bearer token longer than %d bytes: %w", MaxTokenLen, errUnauthenticated)
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, fmt.Errorf("authorization scheme must be Bearer: %w", errUnauthenticated)
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	c, err := verify(a.Key, strings.TrimSpace(tok), now())
	if err != nil {
		return Principal{}, err
	}
	return Principal{Role: c.Role, Canvas: c.Canvas}, nil
}

// VerifyToken checks tok against key at time now and returns its claims.
// Every failure wraps errUnauthenticated.
func VerifyToken(key []byte, tok string, now time.Time) (Claims, error) {
	return verify(key, tok, now)
}

func verify(key []byte, tok string, now time.Time) (Claims, error) {
	bad := func(why string) (Claims, error) {
		return Claims{}, fmt.Errorf("bearer token %s: %w", why, errUnauthenticated)
	}
	if len(tok) > MaxTokenLen {
		return bad(fmt.Sprintf("is longer than %d bytes", MaxTokenLen))
	}
	if !strings.HasPrefix(tok, tokenPrefix) {
		return bad("is malformed")
	}
	i := strings.LastIndexByte(tok, '.')
	if i < len(tokenPrefix) {
		return bad("is malformed")
	}
	signed, sig64 := tok[:i], tok[i+1:]
	if base64.RawURLEncoding.DecodedLen(len(sig64)) != sha256.Size {
		return bad("is malformed")
	}
	var sig [sha256.Size]byte
	n, err := base64.RawURLEncoding.Decode(sig[:], []byte(sig64))
	if err != nil {
		return bad("is malformed")
	}
	// Check the MAC before looking inside: nothing unauthenticated is parsed.
	if !hmac.Equal(sig[:n], mac(key, signed)) {
		return bad("signature does not match")
	}
	raw, err := base64.RawURLEncoding.DecodeString(signed[len(tokenPrefix):])
	if err != nil {
		return bad("is malformed")
	}
	var p payload
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return bad("is malformed")
	}
	var c Claims
	if c.Role, err = ParseRole(p.R); err != nil {
		return bad("has an unknown role")
	}
	if p.C != "" {
		id, err := traces.ParseCanvasID(p.C)
		if err != nil {
			return bad("has a bad canvas scope")
		}
		c.Canvas = &id
	}
	c.Expiry = time.Unix(p.E, 0)
	if !now.Before(c.Expiry) {
		return bad("has expired")
	}
	return c, nil
}

// LoadKey reads a signing key file: either hex (64+ hex digits, as
// LoadOrCreateKey writes) or raw bytes; surrounding whitespace is ignored.
// A key shorter than MinKeyLen bytes is an error.
func LoadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read signing key: %w", err)
	}
	b = bytes.TrimSpace(b)
	if k, err := hex.DecodeString(string(b)); err == nil && len(k) >= MinKeyLen {
		return k, nil
	}
	if len(b) < MinKeyLen {
		return nil, fmt.Errorf("signing key %s: %d bytes, need at least %d (e.g. `head -c 32 /dev/urandom | xxd -p -c 64 > %s`)", path, len(b), MinKeyLen, path)
	}
	return b, nil
}

// LoadOrCreateKey returns the signing key at path, creating the file first
// (mode 0600, 32 random bytes as hex) when it does not exist. `tracegw dev`
// uses it so tokens minted with `tracegw token --signing-key-file` keep
// working across restarts.
func LoadOrCreateKey(path string) ([]byte, error) {
	k, err := LoadKey(path)
	if err == nil || !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("generate signing key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return LoadKey(path) // another process won the race
	}
	if err != nil {
		return nil, fmt.Errorf("create signing key: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(b[:]) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write signing key %s: %w", path, err)
	}
	return b[:], nil
}
