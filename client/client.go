package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client talks to one gateway. It is safe for concurrent use; create one
// and share it, so connections are reused. Close releases idle connections.
type Client struct {
	base      string // without trailing slash
	auth      string // "Bearer …" or empty
	hc        *http.Client
	ownsHC    bool
	attempts  int
	backoff   time.Duration
	maxWait   time.Duration
	ua        string
	gzipMin   int   // save bodies of at least this many bytes go gzip-compressed; <0: never
	directMin int64 // traces whose stored form reaches this size upload straight to storage; <=0: never
}

// Option configures New.
type Option func(*Client)

// WithHTTPClient uses hc instead of the client's own tuned http.Client (for
// example a test server's client, or one with TLS settings).
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) { c.hc, c.ownsHC = hc, false }
}

// WithConcurrency sizes the connection pool for n concurrent calls (default
// 64): that many idle keep-alive connections are kept to the gateway.
func WithConcurrency(n int) Option {
	return func(c *Client) {
		if t, ok := c.hc.Transport.(*http.Transport); ok && c.ownsHC && n > 0 {
			t.MaxIdleConnsPerHost = n
			t.MaxIdleConns = 2 * n
		}
	}
}

// WithRetry sets how retryable calls are retried: at most attempts tries
// in all (1 disables retries), waiting a jittered, doubling backoff that
// starts at first and is capped at max. Default: 5 tries, 50 ms, 2 s.
func WithRetry(attempts int, first, max time.Duration) Option {
	return func(c *Client) {
		c.attempts = attempts
		c.backoff = first
		c.maxWait = max
	}
}

// WithGzipAbove sends save bodies of at least n bytes gzip-compressed
// (Content-Encoding: gzip; default 1 KiB); n < 0 never compresses. The
// gateway stores traces compressed, and stores a compressed body it
// receives as it is: compressing here spares the gateway that CPU.
func WithGzipAbove(n int) Option { return func(c *Client) { c.gzipMin = n } }

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option { return func(c *Client) { c.ua = ua } }

// DefaultConcurrency is the number of concurrent calls the default
// connection pool is sized for.
const DefaultConcurrency = 64

// DefaultGzipAbove is the body size from which saves are sent compressed.
const DefaultGzipAbove = 1 << 10

// DefaultDirectUploadAbove is the compressed size from which Save uploads
// a trace straight to storage (see WithDirectUploadAbove).
const DefaultDirectUploadAbove = 1 << 20

// New returns a client of the gateway at baseURL (for example
// "http://127.0.0.1:7070") that sends token as its bearer token (empty: no
// Authorization header, for a gateway run with --insecure-no-auth).
func New(baseURL, token string, opts ...Option) *Client {
	c := &Client{
		base:      strings.TrimRight(baseURL, "/"),
		hc:        &http.Client{Transport: newTransport(DefaultConcurrency)},
		ownsHC:    true,
		attempts:  5,
		backoff:   50 * time.Millisecond,
		maxWait:   2 * time.Second,
		ua:        "tracegw-go-client/1",
		gzipMin:   DefaultGzipAbove,
		directMin: DefaultDirectUploadAbove,
	}
	if token != "" {
		c.auth = "Bearer " + token
	}
	for _, o := range opts {
		o(c)
	}
	if c.attempts < 1 {
		c.attempts = 1
	}
	return c
}

// newTransport is a keep-alive transport for many concurrent calls to one
// host. Transparent response compression is off: responses are msgpack and
// already compact, and gzip would cost CPU on both sides of a loopback or
// LAN hop. (Save bodies are compressed, by Save itself: the gateway would
// compress them for storage anyway; see WithGzipAbove.)
func newTransport(conc int) *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          2 * conc,
		MaxIdleConnsPerHost:   conc,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
	}
}

// Close releases the client's idle connections. The client stays usable.
func (c *Client) Close() {
	if c.ownsHC {
		c.hc.CloseIdleConnections()
	}
}

const (
	ctJSON    = "application/json"
	ctMsgpack = "application/msgpack"
	// maxResponse bounds a response body read into memory.
	maxResponse = 256 << 20
)

// request is one API call.
type request struct {
	method, path string
	query        url.Values
	body         []byte
	contentType  string
	encoding     string // Content-Encoding of body, if any
	accept       string
	ifMatch      int64
	// retry marks calls that are safe to repeat: reads, idempotent writes,
	// and saves (which carry their traceID).
	retry bool
}

type response struct {
	status int
	header http.Header
	body   []byte
}

// do sends r, retrying retryable calls on network errors, 429, 502, 503
// and 504. A non-2xx answer is returned as an *APIError; a network error
// after the last try wraps ErrUnavailable; a cancelled ctx returns its error.
func (c *Client) do(ctx context.Context, r request) (*response, error) {
	attempts := 1
	if r.retry {
		attempts = c.attempts
	}
	var last error
	for attempt := 1; ; attempt++ {
		resp, err := c.once(ctx, r)
		var wait time.Duration
		switch {
		case err == nil && resp.status < 300:
			return resp, nil
		case err == nil:
			apiErr := parseAPIError(resp.status, resp.header, resp.body)
			if !retryableStatus(resp.status) {
				return nil, apiErr
			}
			last, wait = apiErr, retryAfter(resp.header)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("%s %s: %w", r.method, r.path, ctx.Err())
		default:
			last = fmt.Errorf("%s %s: %w: %w", r.method, r.path, ErrUnavailable, err)
		}
		if attempt >= attempts {
			return nil, last
		}
		wait = max(wait, c.jitter(attempt))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("%s %s: %w (last error: %v)", r.method, r.path, ctx.Err(), last)
		case <-t.C:
		}
	}
}

func retryableStatus(s int) bool {
	return s == http.StatusTooManyRequests || s == http.StatusServiceUnavailable ||
		s == http.StatusBadGateway || s == http.StatusGatewayTimeout
}

// jitter is the wait before try attempt+1: a random duration between half
// and all of first*2^(attempt-1), capped at maxWait.
func (c *Client) jitter(attempt int) time.Duration {
	d := c.backoff << min(attempt-1, 20)
	if d > c.maxWait || d <= 0 {
		d = c.maxWait
	}
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2)
}

// retryAfter honours a Retry-After in seconds, capped at 30 s.
func retryAfter(h http.Header) time.Duration {
	s, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || s <= 0 {
		return 0
	}
	return min(time.Duration(s)*time.Second, 30*time.Second)
}

func (c *Client) once(ctx context.Context, r request) (*response, error) {
	u := c.base + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, body)
	if err != nil {
		return nil, err
	}
	if r.body != nil {
		req.Header.Set("Content-Type", r.contentType)
		if r.encoding != "" {
			req.Header.Set("Content-Encoding", r.encoding)
		}
	}
	if r.accept != "" {
		req.Header.Set("Accept", r.accept)
	}
	if r.ifMatch != 0 {
		req.Header.Set("If-Match", `"`+strconv.FormatInt(r.ifMatch, 10)+`"`)
	}
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	if c.ua != "" {
		req.Header.Set("User-Agent", c.ua)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := readAll(resp)
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: b}, nil
}

func readAll(resp *http.Response) ([]byte, error) {
	if resp.ContentLength == 0 {
		return nil, nil
	}
	size := 512
	if resp.ContentLength > 0 && resp.ContentLength < maxResponse {
		size = int(resp.ContentLength)
	}
	buf := bytes.NewBuffer(make([]byte, 0, size+1))
	n, err := buf.ReadFrom(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, err
	}
	if n > maxResponse {
		return nil, errors.New("response larger than 256 MiB")
	}
	return buf.Bytes(), nil
}

// canvasPath is /v1/canvases/{canvas}, the IDs path-escaped so a bad one
// reaches the gateway as one segment (and is answered 400 there).
func canvasPath(canvas CanvasID) string {
	return "/v1/canvases/" + url.PathEscape(string(canvas))
}

func tracePath(canvas CanvasID, id TraceID) string {
	return canvasPath(canvas) + "/traces/" + url.PathEscape(string(id))
}
