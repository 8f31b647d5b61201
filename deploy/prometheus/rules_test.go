// Package rules_test checks the Prometheus alert rules shipped beside it:
// promtool validates them and runs their unit tests, and every tracegw_*
// metric they use must be one that tracegw exports.
package rules_test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tracegw/tracegw/internal/notify"
	"github.com/tracegw/tracegw/internal/ttl"
)

const (
	rules     = "tracegw.rules.yml"
	rulesTest = "tracegw.rules_test.yml"
)

func promtool(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (%v): install it with `apt-get install prometheus` (Debian's package provides promtool; the server need not run)", err)
	}
	return p
}

// TestAlertRules runs `promtool check rules` and `promtool test rules`.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	bin := promtool(t)
	for _, args := range [][]string{{"check", "rules", rules}, {"test", "rules", rulesTest}} {
		out, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// names records the fully qualified name of every metric registered.
type names struct {
	prometheus.Registerer
	seen map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (n names) Register(c prometheus.Collector) error {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		if m := fqName.FindStringSubmatch(d.String()); m != nil {
			n.seen[m[1]] = true
		}
	}
	return n.Registerer.Register(c)
}

// TestRulesUseExportedMetrics: a renamed metric would silence its alert
// without any error, so every tracegw_* series the rules name must be one
// the GC or the notification consumer registers.
func TestRulesUseExportedMetrics(t *testing.T) {
	t.Parallel()
	reg := names{prometheus.NewRegistry(), map[string]bool{}}
	if _, err := ttl.New(nil, nil, ttl.DefaultPolicy(), time.Now, nil, reg, ttl.Options{}); err != nil {
		t.Fatal(err)
	}
	if _, err := notify.New(nil, nil, nil, "b", notify.Options{Registerer: reg}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(rules)
	if err != nil {
		t.Fatal(err)
	}
	used := regexp.MustCompile(`tracegw_[a-z_]+`).FindAllString(string(b), -1)
	slices.Sort(used)
	for _, m := range slices.Compact(used) {
		base := strings.TrimSuffix(m, "_bucket")
		if strings.HasSuffix(m, "_") { // a prefix in a comment, like tracegw_gc_*
			continue
		}
		if !reg.seen[base] {
			t.Errorf("the rules use %s, which tracegw does not export", m)
		}
	}
	if len(used) < 8 {
		t.Errorf("found only %d metric names in %s", len(used), rules)
	}
}
