package main

import (
	"bytes"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestBenchHelp runs `tracegw bench -h`: it lists every flag of the bench,
// each with the default Load really gives it.
func TestBenchHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(t.Context(), []string{"bench", "-h"}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit code %d, want 0 (help asked for)", code)
	}
	help := stdout.String()
	if !strings.HasPrefix(help, "usage: tracegw bench [flags]\n") || stderr.Len() != 0 {
		t.Fatalf("help = %q (stderr %q), want the usage line first, on stdout", help, stderr.String())
	}
	var listed []string
	for _, m := range regexp.MustCompile(`(?m)^  --([a-z-]+)`).FindAllStringSubmatch(help, -1) {
		listed = append(listed, m[1])
	}
	want := []string{"json", "profile", "quick", "seed", "token", "url"}
	if !slices.Equal(listed, want) {
		t.Errorf("flags listed = %v, want %v\n%s", listed, want, help)
	}
	c, err := Load("bench", nil, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The defaults shown are Load's: only seed has a non-zero one.
	if c.Seed != 1 || !strings.Contains(help, "seed of the generated payloads (default 1)") {
		t.Errorf("Load's seed = %d; help:\n%s", c.Seed, help)
	}
	if c.Quick || c.BenchURL != "" || c.Token != "" || c.JSONOut != "" || c.ProfileDir != "" || strings.Count(help, "(default") != 1 {
		t.Errorf("Load = %+v; want zero defaults except seed, as the help shows:\n%s", c, help)
	}
}
