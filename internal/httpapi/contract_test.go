package httpapi_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/tracegw/tracegw/internal/httpapi"
	"github.com/tracegw/tracegw/internal/traces"
)

// The HTTP tests check every exchange against api/openapi.yaml: the
// gateways serve through serveChecked, which validates each request and
// response with kin-openapi after the handler is done. The spec is loaded
// and routed once per test binary.

// Capture bounds: past them an exchange is still checked for its status and
// content type, but its body is not validated.
const (
	maxCheckedRequest  = 1 << 20
	maxCheckedResponse = 8 << 20
)

// contract is the spec, loaded twice: as written, for requests, and with
// every response object schema closed (see closeObjects), for responses.
type contract struct {
	reqDoc, respDoc       *openapi3.T
	reqRouter, respRouter routers.Router
	errorSchema           *openapi3.Schema
}

var loadContract = sync.OnceValues(func() (*contract, error) {
	load := func() (*openapi3.T, routers.Router, error) {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromFile(openapiPath)
		if err != nil {
			return nil, nil, fmt.Errorf("load %s: %w", openapiPath, err)
		}
		if err := doc.Validate(loader.Context); err != nil {
			return nil, nil, fmt.Errorf("%s is not a valid OpenAPI document: %w", openapiPath, err)
		}
		// Route by path alone: test servers listen on random ports.
		doc.Servers = nil
		r, err := gorillamux.NewRouter(doc)
		if err != nil {
			return nil, nil, fmt.Errorf("route %s: %w", openapiPath, err)
		}
		return doc, r, nil
	}
	c := &contract{}
	var err error
	if c.reqDoc, c.reqRouter, err = load(); err != nil {
		return nil, err
	}
	if c.respDoc, _, err = load(); err != nil {
		return nil, err
	}
	seen := map[*openapi3.Schema]bool{}
	for _, item := range c.respDoc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, resp := range op.Responses.Map() {
				for _, mt := range resp.Value.Content {
					closeObjects(mt.Schema, seen)
				}
			}
		}
	}
	// Closing the schemas changes what the router holds only through
	// pointers, but build it after them anyway.
	if c.respRouter, err = gorillamux.NewRouter(c.respDoc); err != nil {
		return nil, err
	}
	c.errorSchema = c.respDoc.Components.Schemas["Error"].Value
	return c, nil
})

// closeObjects sets additionalProperties: false on every object schema
// under s that lists properties and says nothing about others. The spec
// leaves response objects open so that clients ignore fields added later;
// the tests hold the server to sending only documented fields, so that a
// renamed or undocumented field fails.
func closeObjects(s *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
	if s == nil || s.Value == nil || seen[s.Value] {
		return
	}
	v := s.Value
	seen[v] = true
	if len(v.Properties) > 0 && v.AdditionalProperties.Has == nil && v.AdditionalProperties.Schema == nil {
		closed := false
		v.AdditionalProperties.Has = &closed
	}
	for _, p := range v.Properties {
		closeObjects(p, seen)
	}
	closeObjects(v.Items, seen)
	closeObjects(v.AdditionalProperties.Schema, seen)
	for _, list := range [][]*openapi3.SchemaRef{v.AllOf, v.AnyOf, v.OneOf, v.PrefixItems} {
		for _, x := range list {
			closeObjects(x, seen)
		}
	}
}

// serveChecked serves h on a loopback server, closed at cleanup. For a
// test (not a benchmark, whose numbers must not include it), every
// exchange is checked against api/openapi.yaml and a mismatch fails t.
func serveChecked(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	if _, ok := t.(*testing.T); ok {
		h = checked(t, h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(hs.Close)
	return hs
}

// checked wraps h: after h has answered, the request and response are
// checked against the spec and every mismatch is reported to t. h sees the
// request and writer it would see unwrapped (bodies pass through, only
// copied), so limits and streaming behave as in production.
func checked(t testing.TB, h http.Handler) http.Handler {
	t.Helper()
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in := r.Clone(r.Context())
		body := &teeBody{ReadCloser: r.Body, max: maxCheckedRequest}
		if r.Body == nil || r.Body == http.NoBody {
			body.eof = true
		} else {
			r.Body = body
		}
		rec := &recorder{ResponseWriter: w, max: maxCheckedResponse}
		h.ServeHTTP(rec, r)
		ex := exchange{req: in, reqBody: body.buf.Bytes(), reqComplete: body.eof && !body.overflow,
			status: rec.status, header: rec.snapshot(), body: rec.buf.Bytes(), bodyComplete: !rec.overflow}
		if ex.status == 0 {
			ex.status = http.StatusOK
		}
		for _, err := range c.check(r.Context(), ex) {
			t.Errorf("openapi contract: %s %s → %d: %v\nresponse body: %.500s", in.Method, in.URL.RequestURI(), ex.status, err, ex.body)
		}
	})
}

// exchange is one request and the response the server gave it.
type exchange struct {
	req          *http.Request // its body is not read: reqBody holds it
	reqBody      []byte
	reqComplete  bool // reqBody is the whole body
	status       int
	header       http.Header
	body         []byte
	bodyComplete bool
}

// check returns every way ex breaks the spec: a response whose status,
// content type, headers or body the operation does not document; a route
// the spec lacks answered other than 404 (405 with the spec's Allow for a
// path it has); a request the spec rejects answered with success.
func (c *contract) check(ctx context.Context, ex exchange) []error {
	req := ex.req.Clone(ctx)
	if req.Method == http.MethodHead { // answered by the GET operation
		req.Method = http.MethodGet
	}
	route, params, err := c.reqRouter.FindRoute(req)
	switch {
	case errors.Is(err, routers.ErrPathNotFound):
		// 400: a path the server refuses before routing ("..", "//").
		if ex.status != http.StatusNotFound && ex.status != http.StatusBadRequest {
			return []error{fmt.Errorf("the spec has no path %s, but the server answered %d (want 404)", req.URL.Path, ex.status)}
		}
		return c.checkError(ex)
	case errors.Is(err, routers.ErrMethodNotAllowed):
		if ex.status == http.StatusBadRequest {
			return c.checkError(ex)
		}
		if ex.status != http.StatusMethodNotAllowed {
			return []error{fmt.Errorf("the spec has no %s operation on %s, but the server answered %d (want 405)", req.Method, req.URL.Path, ex.status)}
		}
		errs := c.checkError(ex)
		if got, want := allowed(ex.header.Get("Allow")), c.specMethods(req); !slices.Equal(got, want) {
			errs = append(errs, fmt.Errorf("405 Allow = %q, want the spec's methods %q", got, want))
		}
		return errs
	case err != nil:
		return []error{fmt.Errorf("route: %w", err)}
	}

	var errs []error
	reqOpts := &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, SkipSettingDefaults: true}
	reqOpts.WithCustomSchemaErrorFunc(schemaError)
	reqIn := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route, Options: reqOpts}
	reqBody := ex.reqBody
	if strings.EqualFold(req.Header.Get("Content-Encoding"), "gzip") {
		// A compressed body is checked as the document it inflates to.
		if zr, err := gzip.NewReader(bytes.NewReader(reqBody)); err == nil {
			if b, err := io.ReadAll(zr); err == nil {
				reqBody = b
			}
		}
	}
	if isJSON(req.Header.Get("Content-Type")) && ex.reqComplete {
		req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(reqBody)), int64(len(reqBody))
	} else {
		// msgpack (or a body the server did not read to the end): the
		// parameters are still checked.
		req.Body, reqIn.Options.ExcludeRequestBody = http.NoBody, true
	}
	if err := openapi3filter.ValidateRequest(ctx, reqIn); err != nil && ex.status < 300 {
		errs = append(errs, fmt.Errorf("the server accepted a request the spec rejects: %w", err))
	}

	respRoute, respParams, err := c.respRouter.FindRoute(req)
	if err != nil {
		return append(errs, fmt.Errorf("route for the response: %w", err))
	}
	ct := ex.header.Get("Content-Type")
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: openapi3filter.NoopAuthenticationFunc,
		ExcludeResponseBody: !ex.bodyComplete || !isJSON(ct) || ex.req.Method == http.MethodHead}
	opts.WithCustomSchemaErrorFunc(schemaError)
	respIn := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: respParams, Route: respRoute, Options: opts},
		Status:                 ex.status, Header: ex.header, Body: io.NopCloser(bytes.NewReader(ex.body)), Options: opts,
	}
	if err := openapi3filter.ValidateResponse(ctx, respIn); err != nil {
		return append(errs, err)
	}
	// kin-openapi ignores a body where the spec documents none, and skips
	// the content type along with the body: check both here.
	if r := respRoute.Operation.Responses.Status(ex.status); r != nil && r.Value != nil {
		switch {
		case len(r.Value.Content) == 0 && len(ex.body) > 0:
			errs = append(errs, fmt.Errorf("status %d documents no body, but %d bytes came", ex.status, len(ex.body)))
		case opts.ExcludeResponseBody && len(r.Value.Content) > 0 && r.Value.Content.Get(ct) == nil:
			errs = append(errs, fmt.Errorf("status %d does not document Content-Type %q", ex.status, ct))
		}
	}
	return errs
}

// schemaError says where and what, without kin-openapi's dump of the
// whole schema.
func schemaError(err *openapi3.SchemaError) string {
	return "at /" + strings.Join(err.JSONPointer(), "/") + ": " + err.Reason
}

// checkError checks an answer to a route the spec lacks: the error model.
func (c *contract) checkError(ex exchange) []error {
	if !isJSON(ex.header.Get("Content-Type")) {
		return []error{fmt.Errorf("error with Content-Type %q, want JSON", ex.header.Get("Content-Type"))}
	}
	v, err := decodeJSON(ex.body)
	if err != nil {
		return []error{err}
	}
	if err := c.errorSchema.VisitJSON(v, openapi3.EnableJSONSchema2020()); err != nil {
		return []error{fmt.Errorf("error body does not match #/components/schemas/Error: %w", err)}
	}
	return nil
}

// specMethods is what the spec allows on req's path, as an Allow header
// lists it (HEAD with GET, as net/http serves it).
func (c *contract) specMethods(req *http.Request) []string {
	var out []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := req.Clone(req.Context())
		probe.Method = m
		if m == http.MethodHead {
			probe.Method = http.MethodGet
		}
		if _, _, err := c.reqRouter.FindRoute(probe); err == nil {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

func allowed(h string) []string {
	var out []string
	for m := range strings.SplitSeq(h, ",") {
		if m = strings.TrimSpace(m); m != "" {
			out = append(out, m)
		}
	}
	slices.Sort(out)
	return out
}

func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// teeBody copies what the handler reads from a request body, up to max.
type teeBody struct {
	io.ReadCloser
	buf      bytes.Buffer
	max      int
	overflow bool
	eof      bool
}

func (b *teeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if b.buf.Len()+n > b.max {
		b.overflow = true
	} else {
		b.buf.Write(p[:n])
	}
	if err == io.EOF {
		b.eof = true
	}
	return n, err
}

// recorder passes a response through and keeps a copy: the status, the
// header as sent and up to max bytes of body.
type recorder struct {
	http.ResponseWriter
	status   int
	header   http.Header
	buf      bytes.Buffer
	max      int
	overflow bool
}

func (w *recorder) WriteHeader(code int) {
	if w.status == 0 && code >= 200 {
		w.status, w.header = code, w.ResponseWriter.Header().Clone()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *recorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status, w.header = http.StatusOK, w.ResponseWriter.Header().Clone()
	}
	if w.buf.Len()+len(p) > w.max {
		w.overflow = true
	} else {
		w.buf.Write(p)
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (w *recorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (w *recorder) snapshot() http.Header {
	if w.header == nil { // nothing written: an empty 200
		return w.ResponseWriter.Header().Clone()
	}
	return w.header
}

func decodeJSON(b []byte) (any, error) {
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("body is not JSON: %w", err)
	}
	return v, nil
}

// TestContractCheckFindsDrift proves the checker fails what it must and
// passes what it should, on exchanges made up here (no server needed).
func TestContractCheckFindsDrift(t *testing.T) {
	t.Parallel()
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	const (
		id    = "01a231d6-822d-7153-8042-180462c0680d"
		cv    = "/v1/canvases/" + canvas
		errNF = `{"error":{"code":"not_found","message":"no route"}}`
	)
	jsonHdr := func(kv ...string) http.Header {
		h := http.Header{"Content-Type": {"application/json"}}
		for i := 0; i+1 < len(kv); i += 2 {
			h.Set(kv[i], kv[i+1])
		}
		return h
	}
	for _, tc := range []struct {
		name         string
		method, path string
		reqCT        string
		reqBody      string
		status       int
		header       http.Header
		body         string
		wantErr      string // "" when the exchange keeps the contract
	}{
		{name: "saved", method: "POST", path: cv + "/traces", reqCT: "application/json", reqBody: `{"rootTLID":"1"}`,
			status: 201, header: jsonHdr("Location", cv+"/traces/"+id), body: `{"traceID":"` + id + `","generation":"7"}`},
		{name: "msgpack answer", method: "POST", path: cv + "/traces", reqCT: "application/msgpack", reqBody: "\x81",
			status: 201, header: http.Header{"Content-Type": {"application/msgpack"}}, body: "\x82"},
		{name: "undocumented response field", method: "POST", path: cv + "/traces", reqCT: "application/json", reqBody: `{"rootTLID":"1"}`,
			status: 201, header: jsonHdr(), body: `{"traceID":"` + id + `","generation":"7","canvasID":"x"}`, wantErr: "canvasID"},
		{name: "required response field missing", method: "POST", path: cv + "/traces", reqCT: "application/json", reqBody: `{"rootTLID":"1"}`,
			status: 201, header: jsonHdr(), body: `{"traceID":"` + id + `"}`, wantErr: "generation"},
		{name: "wrong field type", method: "POST", path: cv + "/traces", reqCT: "application/json", reqBody: `{"rootTLID":"1"}`,
			status: 201, header: jsonHdr(), body: `{"traceID":"` + id + `","generation":7}`, wantErr: "generation"},
		{name: "undocumented status", method: "POST", path: cv + "/traces", reqCT: "application/json", reqBody: `{"rootTLID":"1"}`,
			status: 418, header: jsonHdr(), body: `{}`, wantErr: "status is not supported"},
		{name: "undocumented content type", method: "GET", path: cv + "/holds",
			status: 200, header: http.Header{"Content-Type": {"text/html"}}, body: `<p>`, wantErr: "text/html"},
		{name: "undocumented msgpack", method: "GET", path: "/healthz",
			status: 200, header: http.Header{"Content-Type": {"application/msgpack"}}, body: "\x80", wantErr: "application/msgpack"},
		{name: "error model", method: "GET", path: cv + "/holds",
			status: 404, header: jsonHdr(), body: errNF, wantErr: "status is not supported"},
		{name: "error body off the model", method: "GET", path: cv + "/traces/" + id,
			status: 404, header: jsonHdr(), body: `{"error":"not found"}`, wantErr: "doesn't match"},
		{name: "accepted unknown body field", method: "POST", path: cv + "/traces", reqCT: "application/json", reqBody: `{"rootTLID":"1","functionResult":[]}`,
			status: 201, header: jsonHdr(), body: `{"traceID":"` + id + `","generation":"7"}`, wantErr: "accepted a request the spec rejects"},
		{name: "refused unknown body field", method: "POST", path: cv + "/traces", reqCT: "application/json", reqBody: `{"rootTLID":"1","functionResult":[]}`,
			status: 400, header: jsonHdr(), body: `{"error":{"code":"invalid_argument","message":"functionResult: unknown field","field":"functionResult"}}`},
		{name: "body where none is documented", method: "DELETE", path: cv + "/traces/" + id + "/hold",
			status: 204, header: jsonHdr(), body: `{}`, wantErr: "documents no body"},
		{name: "unknown path 404", method: "GET", path: "/v2/x", status: 404, header: jsonHdr(), body: errNF},
		{name: "unknown path served", method: "GET", path: "/v2/x", status: 200, header: jsonHdr(), body: `{}`, wantErr: "no path"},
		{name: "405 with Allow", method: "DELETE", path: "/healthz", status: 405, header: jsonHdr("Allow", "GET, HEAD"),
			body: `{"error":{"code":"method_not_allowed","message":"no route"}}`},
		{name: "405 without Allow", method: "DELETE", path: "/healthz", status: 405, header: jsonHdr(),
			body: `{"error":{"code":"method_not_allowed","message":"no route"}}`, wantErr: "Allow"},
		{name: "unknown method served", method: "PATCH", path: cv + "/holds", status: 200, header: jsonHdr(), body: `{"holds":[]}`, wantErr: "no PATCH operation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, tc.path, nil)
			if tc.reqCT != "" {
				req.Header.Set("Content-Type", tc.reqCT)
			}
			errs := c.check(t.Context(), exchange{req: req, reqBody: []byte(tc.reqBody), reqComplete: true,
				status: tc.status, header: tc.header, body: []byte(tc.body), bodyComplete: true})
			switch {
			case tc.wantErr == "" && len(errs) > 0:
				t.Errorf("check = %v, want no error", errs)
			case tc.wantErr != "" && !strings.Contains(fmt.Sprint(errs), tc.wantErr):
				t.Errorf("check = %v, want an error mentioning %q", errs, tc.wantErr)
			}
		})
	}
}

// A path no route has is 404 and a method its path lacks 405, with the
// Allow header net/http derives from the registered patterns, both in the
// JSON error model (serveChecked also holds Allow to the spec's methods).
func TestUnknownRouteAndMethod(t *testing.T) {
	t.Parallel()
	hs := serveChecked(t, httpapi.New(httpapi.Options{}).Handler())
	c := "/v1/canvases/" + canvas
	id := traces.NewTraceID(time.Now()).String()
	for _, tc := range []struct {
		method, path string
		status       int
		code, allow  string
	}{
		{"PATCH", c + "/traces", 405, "method_not_allowed", "GET, HEAD, POST"},
		{"POST", c + "/traces/" + id, 405, "method_not_allowed", "GET, HEAD, PUT"},
		{"PATCH", c + "/unmatched-requests", 405, "method_not_allowed", "DELETE, GET, HEAD, POST"},
		{"GET", c + "/traces/" + id + "/hold", 405, "method_not_allowed", "DELETE, PUT"},
		{"DELETE", "/healthz", 405, "method_not_allowed", "GET, HEAD"},
		{"GET", "/v1/nothing", 404, "not_found", ""},
		{"GET", c + "/traces/" + id + "/layers", 404, "not_found", ""},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			status, hdr, b := call(t, tc.method, hs.URL+tc.path, "", nil)
			code, _ := errorOf(t, b)
			if status != tc.status || code != tc.code || hdr.Get("Allow") != tc.allow {
				t.Errorf("got %d %s Allow %q (%s), want %d %s Allow %q", status, code, hdr.Get("Allow"), b, tc.status, tc.code, tc.allow)
			}
		})
	}
}
