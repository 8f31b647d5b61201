package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/storage"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/tracegw/tracegw/internal/traces"
)

// The storage client spends on every upload more CPU than the rest of a
// save together: a multipart body with a JSON metadata part, a goroutine
// and pipe per writer, the full object resource decoded from the answer.
// A create-only write needs none of it: the XML API takes the same object
// in one PUT whose headers carry the precondition
// (x-goog-if-generation-match: 0), customTime, the content type and
// encoding and the metadata, and answers with the generation in a header.
// So Create, the hot path of every save, goes that way when XML uploads
// are set; everything else stays on the storage client.

// DefaultXMLEndpoint is Cloud Storage's XML API.
const DefaultXMLEndpoint = "https://storage.googleapis.com"

// XMLClient returns the HTTP client of XML API uploads: for endpoint ""
// (real GCS) one that authenticates with the default credentials, else a
// plain one for an emulator. Both keep enough idle connections for many
// concurrent saves, so no save pays a new connection.
func XMLClient(ctx context.Context, endpoint string) (*http.Client, error) {
	base := http.DefaultTransport.(*http.Transport).Clone()
	base.MaxIdleConns = 1024
	base.MaxIdleConnsPerHost = 1024
	// Headers and a body of up to 64 KiB leave in one write, and an answer
	// arrives in one read: fewer system calls per save.
	base.WriteBufferSize = 64 << 10
	base.ReadBufferSize = 64 << 10
	if endpoint != "" {
		return &http.Client{Transport: base}, nil
	}
	rt, err := htransport.NewTransport(ctx, base, option.WithScopes(storage.ScopeReadWrite))
	if err != nil {
		return nil, fmt.Errorf("xml upload client: %w", err)
	}
	return &http.Client{Transport: rt}, nil
}

// UseXMLUploads makes Create write through the XML API at endpoint (a base
// URL such as DefaultXMLEndpoint or an emulator's) with hc. Call it before
// the GCS is shared.
func (g *GCS) UseXMLUploads(hc *http.Client, endpoint string) {
	g.xml = &xmlUploads{hc: hc, base: strings.TrimSuffix(endpoint, "/") + "/" + url.PathEscape(g.name) + "/"}
}

type xmlUploads struct {
	hc   *http.Client
	base string // endpoint/bucket/
}

// objectURL escapes key segment by segment: its slashes stay slashes.
func (x *xmlUploads) objectURL(key string) string {
	var b strings.Builder
	b.Grow(len(x.base) + len(key) + 8)
	b.WriteString(x.base)
	for i, seg := range strings.Split(key, "/") {
		if i > 0 {
			b.WriteByte('/')
		}
		b.WriteString(url.PathEscape(seg))
	}
	return b.String()
}

// createXML is one create-only PUT of body under key.
func (x *xmlUploads) createXML(ctx context.Context, key string, body []byte, o traces.NewObject) (traces.ObjectInfo, error) {
	step := "write " + key
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, x.objectURL(key), bytes.NewReader(body))
	if err != nil {
		return traces.ObjectInfo{}, fmt.Errorf("%s: %w", step, err)
	}
	h := req.Header
	h["X-Goog-If-Generation-Match"] = []string{"0"}
	if o.ContentType != "" {
		h["Content-Type"] = []string{o.ContentType}
	}
	if o.ContentEncoding != "" {
		h["Content-Encoding"] = []string{o.ContentEncoding}
	}
	if !o.CustomTime.IsZero() {
		h["X-Goog-Custom-Time"] = []string{o.CustomTime.UTC().Format(time.RFC3339)}
	}
	for k, v := range o.Metadata {
		h["X-Goog-Meta-"+k] = []string{v}
	}
	resp, err := x.hc.Do(req)
	if err != nil {
		return traces.ObjectInfo{}, translateHTTP(step, 0, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return traces.ObjectInfo{}, translateHTTP(step, resp.StatusCode,
			fmt.Errorf("xml upload: %s: %s", resp.Status, bytes.TrimSpace(msg)))
	}
	_, _ = io.Copy(io.Discard, resp.Body) // keep the connection
	gen, err := strconv.ParseInt(resp.Header.Get("X-Goog-Generation"), 10, 64)
	if err != nil || gen <= 0 {
		return traces.ObjectInfo{}, fmt.Errorf("%s: answer without x-goog-generation (%q)", step, resp.Header.Get("X-Goog-Generation"))
	}
	meta, _ := strconv.ParseInt(resp.Header.Get("X-Goog-Metageneration"), 10, 64)
	created, _ := http.ParseTime(resp.Header.Get("Last-Modified"))
	return traces.ObjectInfo{
		Key: key, Generation: gen, Metageneration: max(meta, 1), Size: int64(len(body)),
		ContentType: o.ContentType, ContentEncoding: o.ContentEncoding, Created: created,
		CustomTime: o.CustomTime.UTC().Truncate(time.Second), Metadata: o.Metadata,
	}, nil
}

// translateHTTP maps a plain HTTP exchange's failure as translate does a
// storage client's: status 0 is a transport error.
func translateHTTP(step string, status int, err error) error {
	switch {
	case status == 0 && (errors.Is(err, context.Canceled) && !isConnErr(err)):
		return fmt.Errorf("%s: %w", step, err)
	case status == 0:
		return errorf(step, traces.ErrUnavailable, err)
	case status == http.StatusNotFound:
		return errorf(step, traces.ErrNotFound, err)
	case status == http.StatusPreconditionFailed:
		return errorf(step, traces.ErrPreconditionFailed, err)
	case status == http.StatusForbidden && strings.Contains(strings.ToLower(err.Error()), "hold"):
		return errorf(step, traces.ErrHeld, err)
	case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
		return errorf(step, traces.ErrUnavailable, err)
	}
	return errorf(step, errors.New("storage"), err)
}

// OpenStored reads the whole object as stored (a gzip object stays
// compressed) with its generation: with XML uploads set, one plain XML API
// GET that accepts gzip, so neither the storage client's reader nor
// decompressive transcoding costs anything; else Open. Absent wraps
// traces.ErrNotFound.
func (g *GCS) OpenStored(ctx context.Context, key string) ([]byte, traces.ObjectInfo, error) {
	if g.xml == nil {
		return g.Open(ctx, key)
	}
	step := "open " + key
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.xml.objectURL(key), nil)
	if err != nil {
		return nil, traces.ObjectInfo{}, fmt.Errorf("%s: %w", step, err)
	}
	req.Header.Set("Accept-Encoding", "gzip")
	resp, err := g.xml.hc.Do(req)
	if err != nil {
		return nil, traces.ObjectInfo{}, translateHTTP(step, 0, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return nil, traces.ObjectInfo{}, translateHTTP(step, resp.StatusCode, fmt.Errorf("xml read: %s: %s", resp.Status, bytes.TrimSpace(msg)))
	}
	size := resp.ContentLength
	buf := bytes.NewBuffer(make([]byte, 0, max(size, 0)+bytes.MinRead))
	if _, err := io.Copy(buf, resp.Body); err != nil {
		return nil, traces.ObjectInfo{}, translateHTTP(step, 0, err)
	}
	gen, err := strconv.ParseInt(resp.Header.Get("X-Goog-Generation"), 10, 64)
	if err != nil || gen <= 0 {
		return nil, traces.ObjectInfo{}, fmt.Errorf("%s: answer without x-goog-generation", step)
	}
	meta, _ := strconv.ParseInt(resp.Header.Get("X-Goog-Metageneration"), 10, 64)
	created, _ := http.ParseTime(resp.Header.Get("Last-Modified"))
	return buf.Bytes(), traces.ObjectInfo{
		Key: key, Generation: gen, Metageneration: meta, Size: int64(buf.Len()),
		ContentType: resp.Header.Get("Content-Type"), ContentEncoding: resp.Header.Get("Content-Encoding"), Created: created,
	}, nil
}
