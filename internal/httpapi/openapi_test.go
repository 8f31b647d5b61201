package httpapi_test

import (
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tracegw/tracegw/internal/httpapi"
)

const openapiPath = "../../api/openapi.yaml"

var pathParam = regexp.MustCompile(`\{[^}]*\}`)

// normalize turns "GET /v1/x/{canvasID}" or ("get", "/v1/x/{id}") into
// "get /v1/x/{}": parameter names may differ between spec and mux.
func normalize(method, path string) string {
	return strings.ToLower(method) + " " + pathParam.ReplaceAllString(path, "{}")
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s := httpapi.New(httpapi.Options{Registerer: reg, Metrics: reg})
	registered := map[string]bool{}
	for _, r := range s.Routes() {
		method, path, ok := strings.Cut(r, " ")
		if !ok {
			t.Errorf("route %q has no method: every route must name one", r)
			continue
		}
		registered[normalize(method, path)] = true
	}
	described := map[string]bool{}
	for path, item := range c.reqDoc.Paths.Map() {
		for method := range item.Operations() {
			described[normalize(method, path)] = true
		}
	}
	for r := range registered {
		if !described[r] {
			t.Errorf("route %s is registered on the server but missing from api/openapi.yaml", r)
		}
	}
	for op := range described {
		if !registered[op] {
			t.Errorf("api/openapi.yaml describes %s, which the server does not register", op)
		}
	}
	if len(registered) < 8 {
		t.Errorf("only %d routes registered; the server is broken", len(registered))
	}
}

// The document loads and validates (loadContract), every operation has an
// id and answers something, every /v1 one documents 401, and the Error
// schema lists every code of the one error table.
func TestOpenAPIWellFormed(t *testing.T) {
	t.Parallel()
	c, err := loadContract()
	if err != nil {
		t.Fatal(err)
	}
	for path, item := range c.reqDoc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" {
				t.Errorf("%s %s has no operationId", method, path)
			}
			if op.Responses.Len() == 0 {
				t.Errorf("%s %s has no responses", method, path)
			}
			if strings.HasPrefix(path, "/v1/") && op.Responses.Status(401) == nil {
				t.Errorf("%s %s does not document 401", method, path)
			}
		}
	}
	code := c.reqDoc.Components.Schemas["Error"].Value.Properties["error"].Value.Properties["code"].Value
	for _, want := range []string{"invalid_argument", "unauthenticated", "permission_denied", "not_found",
		"method_not_allowed", "already_exists", "failed_precondition", "payload_too_large",
		"unsupported_media_type", "resource_exhausted", "unavailable", "internal"} {
		if !slices.Contains(code.Enum, any(want)) {
			t.Errorf("error code %s is not in the Error schema's enum %v", want, code.Enum)
		}
	}
}
