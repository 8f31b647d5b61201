package emulator_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/storage"

	"github.com/tracegw/tracegw/emulator"
)

// With a signing key, the emulator checks V4 signed URLs as GCS does: a URL
// the storage client signed with that key works, with its signed
// precondition and customTime applied; a changed signed header, another
// key, another access ID, an expired URL and a body outside the signed
// length range are refused and store nothing.
func TestSignedURLVerified(t *testing.T) {
	t.Parallel()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	const id = "gw@example.iam.gserviceaccount.com"
	v := newEnv(t, emulator.Options{SigningKey: &key.PublicKey, SigningAccessID: id})
	ct := v.secs()
	headers := []string{"x-goog-if-generation-match:0", "x-goog-custom-time:" + ct.Format(time.RFC3339),
		"x-goog-content-length-range:1,10", "x-goog-meta-tracegw-sha256:abc"}
	sign := func(object string, k *rsa.PrivateKey, access string, expires time.Duration) string {
		t.Helper()
		pemKey := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
		u, err := v.Client.Bucket(v.Bucket).SignedURL(object, &storage.SignedURLOptions{
			Scheme: storage.SigningSchemeV4, Method: http.MethodPut, Expires: time.Now().Add(expires),
			GoogleAccessID: access, PrivateKey: pemKey, ContentType: "application/msgpack", Headers: headers,
			Hostname: strings.TrimPrefix(v.URL, "http://"), Insecure: true,
		})
		if err != nil {
			t.Fatalf("sign: %v", err)
		}
		return u
	}
	put := func(u, body string, override ...string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, u, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/msgpack")
		for _, h := range append(append([]string(nil), headers...), override...) {
			k, val, _ := strings.Cut(h, ":")
			req.Header.Set(k, val)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tc := range []struct {
		name, object, url, body string
		override                []string
		status                  int
		code                    string
	}{
		{"another customTime than signed", "o/1", sign("o/1", key, id, time.Minute), "x", []string{"x-goog-custom-time:" + ct.Add(time.Hour).Format(time.RFC3339)}, 403, "SignatureDoesNotMatch"},
		{"precondition dropped", "o/1", sign("o/1", key, id, time.Minute), "x", []string{"x-goog-if-generation-match:"}, 403, "SignatureDoesNotMatch"},
		{"another object", "o/2", strings.Replace(sign("o/1", key, id, time.Minute), "/o/1?", "/o/2?", 1), "x", nil, 403, "SignatureDoesNotMatch"},
		{"another key", "o/1", sign("o/1", other, id, time.Minute), "x", nil, 403, "SignatureDoesNotMatch"},
		{"another access ID", "o/1", sign("o/1", key, "x@example.com", time.Minute), "x", nil, 403, "AccessDenied"},
		{"body over the signed range", "o/1", sign("o/1", key, id, time.Minute), "01234567890", nil, 400, "EntityTooLarge"},
	} {
		status, body := put(tc.url, tc.body, tc.override...)
		if status != tc.status || !strings.Contains(body, tc.code) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, body, tc.status, tc.code)
		}
		if _, err := v.Client.Bucket(v.Bucket).Object(tc.object).Attrs(t.Context()); err == nil {
			t.Errorf("%s: object %s was stored", tc.name, tc.object)
		}
	}

	u := sign("o/1", key, id, time.Minute)
	if status, body := put(u, "x"); status != http.StatusOK {
		t.Fatalf("signed PUT: %d %s", status, body)
	}
	a := v.attrs(t, "o/1")
	if !a.CustomTime.Equal(ct) || a.Metadata["tracegw-sha256"] != "abc" || a.ContentType != "application/msgpack" {
		t.Errorf("signed upload attrs: customTime %s metadata %v type %s", a.CustomTime, a.Metadata, a.ContentType)
	}
	if status, _ := put(u, "x"); status != http.StatusPreconditionFailed {
		t.Errorf("replayed signed PUT: %d, want 412 (the signed precondition)", status)
	}
	// The emulator's clock decides expiry, as GCS's decides for real URLs.
	late := sign("o/3", key, id, time.Minute)
	v.advance(t, 2*time.Minute)
	if status, body := put(late, "x"); status != http.StatusBadRequest || !strings.Contains(body, "ExpiredToken") {
		t.Errorf("expired URL: %d %s, want 400 ExpiredToken", status, body)
	}
}
