package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/traces"
)

// maxTokenTTL bounds --ttl: a leaked token should not outlive a key rotation
// cycle by years.
const maxTokenTTL = 366 * 24 * time.Hour

// runToken prints a bearer token signed with the configured key.
func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := Load("token", args, os.Getenv, nil)
	if err != nil {
		return err
	}
	tok, err := mintToken(c, time.Now())
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// mintToken validates the token flags (reporting every problem at once,
// naming the flag) and signs a JWT issued at now that expires at now + --ttl.
func mintToken(c Config, now time.Time) (string, error) {
	var errs []error
	role, err := httpapi.ParseRole(c.Role)
	if err != nil {
		errs = append(errs, fmt.Errorf("--role: %w", err))
	}
	var canvas *traces.CanvasID
	if c.Canvas != "" {
		id, err := traces.ParseCanvasID(c.Canvas)
		if err != nil {
			errs = append(errs, fmt.Errorf("--canvas %q: must be a canonical lowercase UUID", c.Canvas))
		}
		canvas = &id
	}
	if c.TTL <= 0 || c.TTL > maxTokenTTL {
		errs = append(errs, fmt.Errorf("--ttl %s: must be positive and at most %s", c.TTL, maxTokenTTL))
	}
	if c.Subject == "" {
		errs = append(errs, errors.New("--subject: must not be empty"))
	}
	var key []byte
	if c.SigningKeyFile == "" {
		errs = append(errs, errors.New("--signing-key-file (TRACEGW_SIGNING_KEY_FILE) is required: the key the gateway checks tokens with "+
			"(serve's --signing-key-file); a running `tracegw dev` keeps its key in <data-dir>/signing.key, "+
			"by default .tracegw-dev/signing.key"))
	} else if key, err = httpapi.LoadKey(c.SigningKeyFile); err != nil {
		errs = append(errs, fmt.Errorf("--signing-key-file: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return "", err
	}
	return httpapi.Sign(key, httpapi.Claims{Role: role, Canvas: canvas, Subject: c.Subject, IssuedAt: now, Expiry: now.Add(c.TTL)})
}
