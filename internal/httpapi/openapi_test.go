package httpapi_test

import (
	"bufio"
	"os"
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

// openapiDoc is what the line scanner learns from the YAML: the operations
// under paths, every block-style key path, and every $ref.
type openapiDoc struct {
	ops  []string        // normalized "method /path"
	keys map[string]bool // "components/schemas/Trace", …
	refs []string        // "components/schemas/Trace", …
}

var (
	httpMethods = []string{"get", "put", "post", "delete", "patch", "head", "options"}
	refRE       = regexp.MustCompile(`\$ref: "#/([^"]+)"`)
)

// parseOpenAPI scans block-style YAML keys by indentation. It is enough for
// our file (two-space indents, flow style only inside leaves) and needs no
// YAML dependency.
func parseOpenAPI(t *testing.T, path string) openapiDoc {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	doc := openapiDoc{keys: map[string]bool{}}
	var stack []string // key path by depth (indent/2)
	inBlock := -1      // indent of a "|" block scalar being skipped
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimLeft(line, " ")
		indent := len(line) - len(trimmed)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if inBlock >= 0 {
			if indent > inBlock {
				continue
			}
			inBlock = -1
		}
		if strings.Contains(line, "\t") {
			t.Fatalf("%s:%d: tab in YAML", path, n)
		}
		for _, m := range refRE.FindAllStringSubmatch(line, -1) {
			doc.refs = append(doc.refs, m[1])
		}
		if indent%2 != 0 {
			t.Fatalf("%s:%d: odd indent %d", path, n, indent)
		}
		if item, ok := strings.CutPrefix(trimmed, "- "); ok {
			// A list item: its keys sit one level deeper, under "-".
			if indent/2 > len(stack) {
				t.Fatalf("%s:%d: indented too far", path, n)
			}
			stack = append(stack[:indent/2], "-")
			trimmed, indent = item, indent+2
			if strings.HasPrefix(trimmed, "{") || strings.HasPrefix(trimmed, "[") {
				continue
			}
		}
		if !strings.Contains(trimmed, ":") {
			continue
		}
		key, rest, _ := strings.Cut(trimmed, ":")
		key = strings.Trim(key, `"`)
		depth := indent / 2
		if depth > len(stack) {
			t.Fatalf("%s:%d: indented too far", path, n)
		}
		stack = append(stack[:depth], key)
		doc.keys[strings.Join(stack, "/")] = true
		if r := strings.TrimSpace(rest); r == "|" || r == ">" {
			inBlock = indent
		}
		if depth == 2 && stack[0] == "paths" && slices.Contains(httpMethods, key) {
			doc.ops = append(doc.ops, normalize(key, stack[1]))
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return doc
}

func TestOpenAPIMatchesRoutes(t *testing.T) {
	t.Parallel()
	doc := parseOpenAPI(t, openapiPath)
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
	for _, op := range doc.ops {
		if described[op] {
			t.Errorf("openapi.yaml describes %s twice", op)
		}
		described[op] = true
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
		t.Errorf("only %d routes registered; the scan or the server is broken", len(registered))
	}
}

func TestOpenAPIWellFormed(t *testing.T) {
	t.Parallel()
	doc := parseOpenAPI(t, openapiPath)
	for _, k := range []string{"openapi", "info/title", "paths", "components/schemas/Error", "components/securitySchemes/bearer"} {
		if !doc.keys[k] {
			t.Errorf("openapi.yaml lacks %s", k)
		}
	}
	for _, ref := range doc.refs {
		if !doc.keys[ref] {
			t.Errorf("$ref #/%s points at nothing", ref)
		}
	}
	// Every operation answers something, and every /v1 one documents 401.
	for key := range doc.keys {
		parts := strings.Split(key, "/")
		if len(parts) == 3 && parts[0] == "paths" && slices.Contains(httpMethods, parts[2]) {
			if !doc.keys[key+"/responses"] {
				t.Errorf("%s has no responses", key)
			}
			if strings.HasPrefix(parts[1], "/v1/") && !doc.keys[key+`/responses/"401"`] && !doc.keys[key+"/responses/401"] {
				t.Errorf("%s does not document 401", key)
			}
		}
	}
	// Every error code of the one error table appears in the Error schema.
	b, err := os.ReadFile(openapiPath)
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range []string{"invalid_argument", "unauthenticated", "permission_denied", "not_found",
		"already_exists", "failed_precondition", "payload_too_large", "unsupported_media_type",
		"resource_exhausted", "unavailable", "internal"} {
		if !strings.Contains(string(b), code) {
			t.Errorf("error code %s is not documented", code)
		}
	}
}
