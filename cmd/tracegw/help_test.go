package main

import (
	"flag"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// helpFlag is one flag as a command's -h prints it.
type helpFlag struct {
	typ, env, usage, def string
	hasDefault           bool
}

var (
	helpHeaderRE  = regexp.MustCompile(`^  --([a-z0-9-]+)(?: ([a-z]+))?  \(env ([A-Z0-9_]+)\)$`)
	helpDefaultRE = regexp.MustCompile(` \(default (.*)\)$`)
)

// parseHelp reads the flags of a command's usage text.
func parseHelp(t *testing.T, text string) map[string]helpFlag {
	t.Helper()
	out := map[string]helpFlag{}
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		m := helpHeaderRE.FindStringSubmatch(lines[i])
		if m == nil {
			if strings.HasPrefix(lines[i], "  -") {
				t.Errorf("unparsed flag line %q", lines[i])
			}
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "    \t") {
			t.Fatalf("flag %s has no description line", m[1])
		}
		f := helpFlag{typ: m[2], env: m[3], usage: strings.TrimPrefix(lines[i+1], "    \t")}
		if d := helpDefaultRE.FindStringSubmatch(f.usage); d != nil {
			f.usage, f.def, f.hasDefault = strings.TrimSuffix(f.usage, d[0]), d[1], true
		}
		out[m[1]] = f
		i++
	}
	return out
}

// Every command's -h exits 0, prints to stdout, lists exactly the command's
// flags with their variables, the defaults Load gives that command, and
// descriptions of its own: none speaks of another command's data ("dev's
// data") or meaning ("reconcile: ...").
func TestHelpMatchesLoad(t *testing.T) {
	t.Parallel()
	var names []string
	for _, c := range commandList {
		names = append(names, c.name)
	}
	for topic := range commandFlags {
		t.Run(topic, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runCmd(t, append(strings.Fields(topic), "-h")...)
			if code != 0 || stderr != "" {
				t.Fatalf("%s -h: exit %d, stderr %q; want 0 and nothing on stderr", topic, code, stderr)
			}
			if !strings.HasPrefix(stdout, "usage: tracegw "+topic+" [flags]"+argsUsage[topic]+"\n\n"+commandSummary(topic)+".\n") {
				t.Errorf("%s -h starts %q, want the usage line and the command's summary", topic, stdout[:min(len(stdout), 120)])
			}
			printed := parseHelp(t, stdout)
			if got, want := slices.Sorted(maps.Keys(printed)), slices.Sorted(slices.Values(commandFlags[topic])); !slices.Equal(got, want) {
				t.Errorf("%s -h lists flags %q, want %q", topic, got, want)
			}
			var fs *flag.FlagSet
			if _, err := Load(topic, nil, func(string) string { return "" }, func(f *flag.FlagSet) { fs = f }); err != nil {
				t.Fatal(err)
			}
			for name, p := range printed {
				f := fs.Lookup(name)
				if f == nil {
					continue
				}
				loaded := f.Value.String()
				got := p.def
				if p.typ == "string" && p.hasDefault {
					var err error
					if got, err = strconv.Unquote(p.def); err != nil {
						t.Errorf("--%s: default %s is not quoted", name, p.def)
					}
				}
				if !p.hasDefault {
					switch loaded {
					case "", "0", "false", "0s":
						loaded = "" // printed as no default
					}
				}
				if got != loaded {
					t.Errorf("%s -h: --%s default %q, but Load gives %q", topic, name, got, loaded)
				}
				if p.env != envName(name) {
					t.Errorf("%s -h: --%s names variable %s, want %s", topic, name, p.env, envName(name))
				}
				if p.usage != usageFor(topic, name) || p.usage == "" {
					t.Errorf("%s -h: --%s described as %q, want %q", topic, name, p.usage, usageFor(topic, name))
				}
				for _, other := range names {
					if strings.HasPrefix(topic, other) {
						continue
					}
					// "reconcile: one canvas" gives another command's meaning;
					// "dev's data" describes another command's flag.
					if regexp.MustCompile(`\b` + regexp.QuoteMeta(other) + `(:|'s data)`).MatchString(p.usage) {
						t.Errorf("%s -h: --%s is described in %s's terms: %q", topic, name, other, p.usage)
					}
				}
			}
		})
	}
}

// The cases a newcomer met: dev and emulator said they listen on :8080,
// the emulator described dev's data dir, token and reconcile shared one
// --canvas text, and dev had no --database-url.
func TestHelpObservedCases(t *testing.T) {
	t.Parallel()
	help := func(args ...string) map[string]helpFlag {
		t.Helper()
		code, stdout, _ := runCmd(t, append(args, "-h")...)
		if code != 0 {
			t.Fatalf("%v -h: exit %d", args, code)
		}
		return parseHelp(t, stdout)
	}
	dev, emu, token, reconcile := help("dev"), help("emulator"), help("token"), help("reconcile")
	for _, c := range []struct {
		what, got, want string
	}{
		{"dev --listen default", dev["listen"].def, `"127.0.0.1:7070"`},
		{"emulator --listen default", emu["listen"].def, `"127.0.0.1:4443"`},
		{"serve --listen default", help("serve")["listen"].def, `":8080"`},
		{"dev --database-url variable", dev["database-url"].env, "TRACEGW_DATABASE_URL"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %s, want %s", c.what, c.got, c.want)
		}
	}
	for _, c := range []struct {
		what, usage string
		wants       []string
		not         string
	}{
		{"emulator --data-dir", emu["data-dir"].usage, []string{"emulator"}, "dev"},
		{"emulator --listen", emu["listen"].usage, []string{"emulator"}, "API on"},
		{"dev --listen", dev["listen"].usage, []string{"/_emulator/"}, ""},
		{"dev --database-url", dev["database-url"].usage, []string{"DATABASE_URL", "<data-dir>/pg"}, ""},
		{"token --canvas", token["canvas"].usage, []string{"token"}, "reconcile"},
		{"reconcile --canvas", reconcile["canvas"].usage, []string{"compare"}, "token"},
	} {
		for _, w := range c.wants {
			if !strings.Contains(c.usage, w) {
				t.Errorf("%s: %q lacks %q", c.what, c.usage, w)
			}
		}
		if c.not != "" && strings.Contains(c.usage, c.not) {
			t.Errorf("%s: %q mentions %q", c.what, c.usage, c.not)
		}
	}
}

// Asking for help is a success: help, -h and --help print the command list
// to stdout and exit 0; help COMMAND is COMMAND -h. No command at all, or
// an unknown one, is a usage error on stderr (exit 2).
func TestHelpExitStatus(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"-help"}} {
		code, stdout, stderr := runCmd(t, args...)
		if code != 0 || stderr != "" {
			t.Errorf("%v: exit %d, stderr %q; want 0, nothing on stderr", args, code, stderr)
		}
		for name := range commands {
			if !strings.Contains(stdout, "\n  "+name+" ") {
				t.Errorf("%v: the command list lacks %s:\n%s", args, name, stdout)
			}
		}
	}
	_, want, _ := runCmd(t, "gc", "-h")
	if code, stdout, _ := runCmd(t, "help", "gc"); code != 0 || stdout != want {
		t.Errorf("help gc: exit %d, %q; want exit 0 and gc -h's text", code, stdout)
	}
	_, want, _ = runCmd(t, "retention", "show", "-h")
	if code, stdout, _ := runCmd(t, "help", "retention", "show"); code != 0 || stdout != want || !strings.Contains(want, "usage: tracegw retention show") {
		t.Errorf("help retention show: exit %d, %q; want exit 0 and retention show -h's text", code, stdout)
	}
	if code, stdout, _ := runCmd(t, "retention", "-h"); code != 0 || !strings.Contains(stdout, "usage: tracegw retention set") || !strings.Contains(stdout, "usage: tracegw retention show") {
		t.Errorf("retention -h: exit %d, %q; want both subcommands", code, stdout)
	}
	for _, args := range [][]string{nil, {"nope"}, {"help", "nope"}} {
		code, stdout, stderr := runCmd(t, args...)
		if code != 2 || stdout != "" || !strings.Contains(stderr, "usage: tracegw COMMAND") {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 2 and the usage on stderr", args, code, stdout, stderr)
		}
	}
	var listed []string
	for _, c := range commandList {
		listed = append(listed, c.name)
	}
	if got, want := slices.Sorted(slices.Values(listed)), slices.Sorted(maps.Keys(commands)); !slices.Equal(got, want) {
		t.Errorf("the help lists %q, the commands are %q", got, want)
	}
}
