package httpapi

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"

	"github.com/tracegw/tracegw/internal/traces"
)

const (
	// GoogleIssuer is the iss of Google-signed ID tokens.
	GoogleIssuer = "https://accounts.google.com"
	// GoogleCertsURL is the JWKS of the keys that sign Google's ID tokens.
	GoogleCertsURL = "https://www.googleapis.com/oauth2/v3/certs"
)

// Google verifies Google-signed OIDC ID tokens of service accounts (how one
// Cloud Run service calls another) and maps their e-mail to a grant. It is
// safe for concurrent use.
type Google struct {
	v        *oidc.IDTokenVerifier
	subjects map[string]Principal
}

// GoogleOptions are NewGoogle's optional settings.
type GoogleOptions struct {
	KeysURL string           // "": GoogleCertsURL
	Now     func() time.Time // nil: time.Now
}

// NewGoogle accepts ID tokens whose aud is audience, signed (RS256) by a
// key of the JWKS at o.KeysURL, issued by GoogleIssuer, unexpired, with a
// verified e-mail that subjects maps to a grant (see LoadSubjects). The key
// set is fetched when first needed and again when a token names a key it
// does not hold; ctx only carries configuration for those fetches (an HTTP
// client set with oidc.ClientContext), its cancellation is ignored.
func NewGoogle(ctx context.Context, audience string, subjects map[string]Principal, o GoogleOptions) *Google {
	if o.KeysURL == "" {
		o.KeysURL = GoogleCertsURL
	}
	keys := oidc.NewRemoteKeySet(ctx, o.KeysURL)
	return &Google{subjects: subjects, v: oidc.NewVerifier(GoogleIssuer, keys,
		&oidc.Config{ClientID: audience, SupportedSigningAlgs: []string{oidc.RS256}, Now: o.Now})}
}

// isGoogle reports whether tok claims (unverified) to be a Google ID token,
// which picks the verifier; each verifier then checks everything itself.
func isGoogle(tok string) bool {
	var c jwt.RegisteredClaims
	if _, _, err := jwt.NewParser().ParseUnverified(tok, &c); err != nil {
		return false
	}
	return c.Issuer == GoogleIssuer || c.Issuer == "accounts.google.com" // go-oidc accepts both for Google
}

func (g *Google) principal(ctx context.Context, tok string) (Principal, error) {
	t, err := g.v.Verify(ctx, tok)
	var expired *oidc.TokenExpiredError
	switch {
	case errors.As(err, &expired):
		return Principal{}, traces.Public(errUnauthenticated, "Google ID token has expired")
	case err != nil:
		return Principal{}, traces.Public(errUnauthenticated, "Google ID token is not valid for this gateway (checked: RS256 signature by Google, iss, aud, exp, nbf)")
	}
	var c struct {
		Email    string `json:"email"`
		Verified bool   `json:"email_verified"`
	}
	if err := t.Claims(&c); err != nil || c.Email == "" || !c.Verified {
		return Principal{}, traces.Public(errUnauthenticated, "Google ID token has no verified e-mail (request it with format=full)")
	}
	p, ok := g.subjects[strings.ToLower(c.Email)]
	if !ok {
		return Principal{}, traces.Public(errPermission, "service account %s has no access to this gateway", c.Email)
	}
	p.Subject = c.Email
	return p, nil
}

// LoadSubjects reads the service accounts whose Google ID tokens are
// accepted: one per line, "EMAIL ROLE [CANVAS]" separated by spaces, where
// ROLE is executor, editor or admin and CANVAS scopes the grant to one
// canvas. Blank lines and lines starting with '#' are ignored. E-mails are
// compared in lower case. Every bad line is reported, by number.
func LoadSubjects(path string) (map[string]Principal, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read subjects: %w", err)
	}
	defer f.Close()
	subjects := map[string]Principal{}
	var errs []error
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		bad := func(why string, a ...any) {
			errs = append(errs, fmt.Errorf("%s:%d: "+why, append([]any{path, n}, a...)...))
		}
		if len(fields) > 3 || len(fields) < 2 {
			bad("want EMAIL ROLE [CANVAS], got %d fields", len(fields))
			continue
		}
		email := strings.ToLower(fields[0])
		var p Principal
		if !strings.Contains(email, "@") {
			bad("%q is not an e-mail", fields[0])
		}
		if _, dup := subjects[email]; dup {
			bad("%s is listed twice", email)
		}
		if p.Role, err = ParseRole(fields[1]); err != nil {
			bad("%v", err)
		}
		if len(fields) == 3 {
			id, err := traces.ParseCanvasID(fields[2])
			if err != nil {
				bad("canvas %q: must be a canonical lowercase UUID", fields[2])
			}
			p.Canvas = &id
		}
		subjects[email] = p
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("read subjects %s: %w", path, err))
	}
	if len(subjects) == 0 && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("subjects %s lists no service account", path))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return subjects, nil
}
