package httpapi

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/tracegw/tracegw/internal/traces"
)

// tracegw's own bearer tokens are JWTs (RFC 7519) signed with HS256 and the
// server's key. Claims: iss and aud "tracegw", sub (who), role ("executor",
// "editor" or "admin"), canvas (a canvas ID; absent: every canvas), iat and
// exp. iss, aud, sub, role and exp are required; only HS256 is accepted.
const (
	// Issuer is the iss claim of tracegw's tokens.
	Issuer = "tracegw"
	// Audience is the aud claim of tracegw's tokens.
	Audience = "tracegw"
	// Leeway is the clock skew allowed on exp, nbf and iat.
	Leeway = 30 * time.Second
	// MaxTokenLen bounds a bearer token; longer ones are rejected before
	// any decoding (tracegw's tokens are about 300 bytes, Google's ID
	// tokens about 1,000).
	MaxTokenLen = 4096
	// MinKeyLen is the shortest signing key accepted (256 bits, RFC 7518).
	MinKeyLen = 32
	// legacyPrefix marks the pre-JWT token format, refused with a hint.
	legacyPrefix = "tgw1."
)

// Claims is what one of tracegw's tokens grants.
type Claims struct {
	Role     Role
	Canvas   *traces.CanvasID // nil: every canvas
	Subject  string           // required: who the token is for
	IssuedAt time.Time        // zero: no iat
	Expiry   time.Time        // required
}

// jwtClaims is the JSON payload of a token.
type jwtClaims struct {
	Role   string `json:"role"`
	Canvas string `json:"canvas,omitempty"`
	jwt.RegisteredClaims
}

// Sign returns a token for c signed with key. It is a pure function: the
// caller chooses the times. It refuses what no verifier would accept: a
// short key, an unknown role, an empty subject or a zero expiry.
func Sign(key []byte, c Claims) (string, error) {
	if len(key) < MinKeyLen || c.Role < RoleExecutor || c.Role > RoleAdmin || c.Subject == "" || c.Expiry.IsZero() {
		return "", fmt.Errorf("a token needs a key of at least %d bytes (have %d), a role, a subject and an expiry", MinKeyLen, len(key))
	}
	jc := jwtClaims{Role: RoleName(c.Role), RegisteredClaims: jwt.RegisteredClaims{
		Issuer: Issuer, Audience: jwt.ClaimStrings{Audience}, Subject: c.Subject, ExpiresAt: jwt.NewNumericDate(c.Expiry)}}
	if !c.IssuedAt.IsZero() {
		jc.IssuedAt = jwt.NewNumericDate(c.IssuedAt)
	}
	if c.Canvas != nil {
		jc.Canvas = c.Canvas.String()
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jc).SignedString(key)
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

// VerifyToken checks tok against key at time now and returns its claims.
// Every failure wraps errUnauthenticated, with a message that never echoes
// the token.
func VerifyToken(key []byte, tok string, now time.Time) (Claims, error) {
	if len(key) < MinKeyLen {
		return Claims{}, unauthenticated("cannot be checked: the gateway has no signing key")
	}
	var jc jwtClaims
	_, err := jwt.ParseWithClaims(tok, &jc, func(*jwt.Token) (any, error) { return key, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), // no "none", no RS256 with the key as a public key
		jwt.WithIssuer(Issuer), jwt.WithAudience(Audience), jwt.WithExpirationRequired(), jwt.WithIssuedAt(),
		jwt.WithLeeway(Leeway), jwt.WithTimeFunc(func() time.Time { return now }), jwt.WithStrictDecoding())
	if err != nil {
		return Claims{}, unauthenticated(jwtReason(err))
	}
	c := Claims{Subject: jc.Subject, Expiry: jc.ExpiresAt.Time}
	if c.Subject == "" {
		return Claims{}, unauthenticated("has no subject (sub)")
	}
	if jc.IssuedAt != nil {
		c.IssuedAt = jc.IssuedAt.Time
	}
	if c.Role, err = ParseRole(jc.Role); err != nil {
		return Claims{}, unauthenticated("has no known role (executor, editor or admin)")
	}
	if jc.Canvas != "" {
		id, err := traces.ParseCanvasID(jc.Canvas)
		if err != nil {
			return Claims{}, unauthenticated("has a bad canvas scope")
		}
		c.Canvas = &id
	}
	return c, nil
}

// jwtReason says in fixed words why the jwt package refused a token, so no
// part of the token reaches the response.
func jwtReason(err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "is not a well-formed JWT"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "signature does not verify (tokens are HS256 JWTs signed with the gateway's key)"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "has expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "is not valid yet"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing), errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenInvalidAudience):
		return fmt.Sprintf("must carry iss %q, aud %q and exp", Issuer, Audience)
	}
	return "is invalid"
}

func unauthenticated(why string) error {
	return traces.Public(errUnauthenticated, "bearer token %s", why)
}

// BearerAuth authenticates bearer tokens: tracegw's own (see Sign) and,
// when Google is set, Google-signed ID tokens of service accounts. It is
// safe for concurrent use; its fields must not change after first use.
type BearerAuth struct {
	Key    []byte
	Google *Google          // nil: Google ID tokens are refused
	Now    func() time.Time // nil: time.Now

	// verified remembers tokens whose signature checked out, so a caller
	// that sends the same token on every request (an executor does) pays
	// the HMAC and the JSON decoding once, not per save. Only the time
	// checks run again. Key must not change once in use.
	mu       sync.Mutex
	verified map[string]verifiedToken
}

// verifiedToken is a token VerifyToken accepted and the times between
// which it stays acceptable (leeway included).
type verifiedToken struct {
	c           Claims
	from, until time.Time
}

// maxVerified bounds the cache; when full it starts afresh.
const maxVerified = 4096

var _ Authenticator = (*BearerAuth)(nil)

// Authenticate checks the request's bearer token. Every failure wraps
// errUnauthenticated (401), or errPermission (403) for a service account
// that is not listed, with a message that never echoes the token.
func (a *BearerAuth) Authenticate(r *http.Request) (Principal, error) {
	h := r.Header.Values("Authorization")
	if len(h) == 0 || h[0] == "" {
		return Principal{}, traces.Public(errUnauthenticated, "missing bearer token (Authorization: Bearer <token>)")
	}
	if len(h) > 1 {
		return Principal{}, traces.Public(errUnauthenticated, "more than one Authorization header")
	}
	if len(h[0]) > len("Bearer ")+MaxTokenLen {
		return Principal{}, unauthenticated(fmt.Sprintf("is longer than %d bytes", MaxTokenLen))
	}
	scheme, tok, ok := strings.Cut(h[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Principal{}, traces.Public(errUnauthenticated, "authorization scheme must be Bearer")
	}
	tok = strings.TrimSpace(tok)
	if strings.HasPrefix(tok, legacyPrefix) {
		return Principal{}, unauthenticated("has the retired tgw1 format: mint a JWT with `tracegw token`")
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	t := now()
	// A remembered token is one of ours (HS256 with our key), so this
	// comes before telling Google's tokens apart.
	a.mu.Lock()
	v, ok := a.verified[tok]
	a.mu.Unlock()
	if ok && !t.Before(v.from) && t.Before(v.until) {
		return Principal{Role: v.c.Role, Canvas: v.c.Canvas, Subject: v.c.Subject}, nil
	}
	if isGoogle(tok) {
		if a.Google == nil {
			return Principal{}, unauthenticated("is a Google ID token, which this gateway does not accept")
		}
		return a.Google.principal(r.Context(), tok)
	}
	c, err := VerifyToken(a.Key, tok, t)
	if err != nil {
		return Principal{}, err
	}
	a.remember(tok, c)
	return Principal{Role: c.Role, Canvas: c.Canvas, Subject: c.Subject}, nil
}

// remember caches an accepted token until its expiry. A token that names
// no issue time, or one not yet valid, is not cached: VerifyToken keeps
// deciding those.
func (a *BearerAuth) remember(tok string, c Claims) {
	if c.IssuedAt.IsZero() {
		return
	}
	nbf, err := notBefore(tok)
	if err != nil {
		return
	}
	v := verifiedToken{c: c, from: c.IssuedAt.Add(-Leeway), until: c.Expiry.Add(Leeway)}
	if nbf.Add(-Leeway).After(v.from) {
		v.from = nbf.Add(-Leeway)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.verified == nil || len(a.verified) >= maxVerified {
		a.verified = make(map[string]verifiedToken)
	}
	a.verified[tok] = v
}

// notBefore reads the nbf claim of a token VerifyToken accepted (zero when
// absent).
func notBefore(tok string) (time.Time, error) {
	var jc jwtClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &jc); err != nil {
		return time.Time{}, err
	}
	if jc.NotBefore == nil {
		return time.Time{}, nil
	}
	return jc.NotBefore.Time, nil
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
