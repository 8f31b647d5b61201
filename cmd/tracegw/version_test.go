package main

import (
	"bytes"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"
)

// version prints the commit a binary was built from, or says why it cannot
// and how to build one that can.
func TestWriteVersion(t *testing.T) {
	stamped := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/tracegw/tracegw", Version: "(devel)"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "9e034b0c01e1943d1da207fc331b915ee22c2b3a"},
			{Key: "vcs.time", Value: "2026-12-01T12:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		}}
	tagged := &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Path: "github.com/tracegw/tracegw", Version: "v1.4.0"}}
	for _, tc := range []struct {
		name   string
		bi     *debug.BuildInfo
		commit string
		wants  []string
		not    string
	}{
		{"stamped", stamped, "", []string{"tracegw dev\n", "commit 9e034b0c01e1943d1da207fc331b915ee22c2b3a (2026-12-01T12:00:00Z) with uncommitted changes\n",
			"go1.26.8 " + runtime.GOOS + "/" + runtime.GOARCH + "\n"}, "unknown"},
		{"module version, no stamp", tagged, "", []string{"module github.com/tracegw/tracegw v1.4.0\n", "commit unknown", "go run", "-buildvcs=false", "-X main.commit="}, ""},
		{"commit set at build time", tagged, "abc123", []string{"commit abc123 (set at build time)\n"}, "unknown"},
		{"no build info", nil, "", []string{"commit unknown", runtime.Version()}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := commit
			commit = tc.commit
			defer func() { commit = old }()
			var b bytes.Buffer
			writeVersion(&b, tc.bi)
			for _, w := range tc.wants {
				if !strings.Contains(b.String(), w) {
					t.Errorf("version output lacks %q:\n%s", w, b.String())
				}
			}
			if tc.not != "" && strings.Contains(b.String(), tc.not) {
				t.Errorf("version output has %q:\n%s", tc.not, b.String())
			}
		})
	}
}
