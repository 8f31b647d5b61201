package httpapi_test

import (
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tracegw/tracegw/internal/httpapi"
)

// metricValue returns the value of the sample line that starts with
// name{labels}, or -1.
func metricValue(t *testing.T, text, series string) float64 {
	t.Helper()
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	g := newSecureGateway(t, "", nil)
	tok := g.token(t, httpapi.RoleExecutor, "")
	g.saveAs(t, canvasA, tok)
	g.saveAs(t, canvasB, tok)
	call(t, "GET", g.URL+"/v1/canvases/"+canvasA+"/traces/x", "", nil) // 401
	call(t, "GET", g.URL+"/no/such/route", "", nil)                    // 404
	status, hdr, b := call(t, "GET", g.URL+"/metrics", "", nil)
	if status != http.StatusOK || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics: %d %s", status, hdr.Get("Content-Type"))
	}
	text := string(b)
	save := `route="POST /v1/canvases/{canvasID}/traces"`
	for series, want := range map[string]float64{
		`tracegw_http_requests_total{code="201",` + save + `}`:                                         2,
		`tracegw_http_requests_total{code="401",route="GET /v1/canvases/{canvasID}/traces/{traceID}"}`: 1,
		`tracegw_http_requests_total{code="404",route="unmatched"}`:                                    1,
		`tracegw_http_request_duration_seconds_count{` + save + `}`:                                    2,
		`tracegw_saved_bytes_total{` + save + `}`:                                                      float64(2 * len(authDoc)),
	} {
		if got := metricValue(t, text, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if strings.Contains(text, "/no/such/route") || strings.Contains(text, canvasA) {
		t.Error("metrics carry raw paths or IDs: label cardinality must stay bounded")
	}
}
