package repocheck

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// selfPath is this file, which names the forbidden paths in its fixtures.
const selfPath = "internal/repocheck/repocheck_test.go"

// tracked returns the module root and the files git tracks under it
// (slash-separated, relative to the root). The repository is what git
// tracks: an untracked file does not satisfy a link. Without git, or
// outside a checkout, the test fails: it must not pass unchecked.
func tracked(t *testing.T) (root string, files []string) {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root %s: %v", root, err)
	}
	git, err := exec.LookPath("git")
	if err != nil {
		t.Fatalf("git is needed to list the repository's files (git ls-files) and was not found: %v; install git (Debian: apt-get install git)", err)
	}
	cmd := exec.Command(git, "ls-files", "-z", "--cached")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("git ls-files in %s: %v: %s\nthese tests run in a git checkout of the repository", root, err, strings.TrimSpace(stderr.String()))
	}
	for f := range strings.SplitSeq(string(out), "\x00") {
		if f != "" {
			files = append(files, f)
		}
	}
	if !slices.Contains(files, "go.mod") || !slices.Contains(files, "README.md") {
		t.Fatalf("git ls-files in %s lists %d files, without go.mod or README.md: not this repository's checkout", root, len(files))
	}
	return root, files
}

// Every relative link of README.md and docs/*.md names a tracked file or
// directory, and a #fragment names a heading (or anchor) of its target.
func TestLinksResolve(t *testing.T) {
	t.Parallel()
	root, files := tracked(t)
	repo := newRepoIndex(files)
	var docs []string
	for _, f := range files {
		if f == "README.md" || path.Dir(f) == "docs" && strings.HasSuffix(f, ".md") {
			docs = append(docs, f)
		}
	}
	read := func(f string) (string, error) {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		return string(b), err
	}
	checked := 0
	for _, doc := range docs {
		text, err := read(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range markdownLinks(text) {
			checked++
			if err := repo.resolve(doc, l.target, read); err != nil {
				t.Errorf("%s:%d: link %q: %v", doc, l.line, l.target, err)
			}
		}
	}
	t.Logf("%d relative links checked in %v", checked, docs)
}

// Every markdown file that README.md, docs/*.md, the OpenAPI document, the
// lint configuration or CI mention by name ("see DESIGN.md", in a link or
// not) is in the repository.
func TestMentionedDocsExist(t *testing.T) {
	t.Parallel()
	root, files := tracked(t)
	repo := newRepoIndex(files)
	for _, f := range files {
		if !(f == "README.md" || f == "api/openapi.yaml" || f == "redocly.yaml" || f == ".ci/run" ||
			path.Dir(f) == "docs" && strings.HasSuffix(f, ".md")) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mentionedDocs(string(b)) {
			if !repo.hasDoc(f, m.text) {
				t.Errorf("%s:%d: mentions %s, which is not in the repository", f, m.line, m.text)
			}
		}
	}
}

var (
	urlRE    = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://\S+`)
	mdNameRE = regexp.MustCompile(`(?:^|[^\w/.-])((?:\.{1,2}/)*[\w-][\w./-]*\.md)\b`)
)

// mentionedDocs returns the markdown file names a text mentions, outside
// URLs.
func mentionedDocs(text string) []hit {
	var out []hit
	for i, line := range strings.Split(text, "\n") {
		line = urlRE.ReplaceAllString(line, "")
		for _, m := range mdNameRE.FindAllStringSubmatch(line, -1) {
			out = append(out, hit{line: i + 1, text: m[1]})
		}
	}
	return out
}

// hasDoc reports whether the markdown file name, mentioned in file from,
// is tracked: a bare name anywhere in the repository, a path relative to
// from's directory or to the root.
func (r repoIndex) hasDoc(from, name string) bool {
	if !strings.Contains(name, "/") {
		for f := range r.files {
			if path.Base(f) == name {
				return true
			}
		}
		return false
	}
	return r.files[path.Clean(path.Join(path.Dir(from), name))] || r.files[path.Clean(name)]
}

// No tracked file outside the documents cites a document the repository
// does not have: a comment that says "see DESIGN.md" or "GCS-FACTS §2"
// sends its reader to something only its author had. Cite docs/… (or
// README.md) by its path, or write the fact itself.
func TestCitedDocsExist(t *testing.T) {
	t.Parallel()
	root, files := tracked(t)
	repo := newRepoIndex(files)
	scanned := 0
	for _, f := range files {
		if f == selfPath || strings.HasSuffix(f, ".md") {
			continue // markdown is TestMentionedDocsExist's
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0 {
			continue // binary
		}
		if strings.HasSuffix(f, ".go") {
			scanned++
		}
		for _, m := range citedDocs(string(b)) {
			if !repo.hasDoc(f, m.text) {
				t.Errorf("%s:%d: cites %s, which is not in the repository: state the fact itself, or point at docs/… or README.md", f, m.line, m.text)
			}
		}
	}
	if scanned < 50 {
		t.Errorf("scanned only %d Go files", scanned)
	}
}

var (
	// sectionCiteRE matches a section citation of a document named in
	// capitals: "GCS-FACTS §2", "STYLE.md §4".
	sectionCiteRE = regexp.MustCompile(`(?:^|[^\w./-])([A-Z][A-Z0-9]*(?:[-_][A-Z0-9]+)*)(\.md)?\s*§`)
	// capsDocRE matches a document name in capitals with hyphens
	// ("EMULATOR-FINDINGS"), each part three letters or more so that a date
	// pattern such as YYYY-MM-DD is not taken for one.
	capsDocRE = regexp.MustCompile(`(?:^|[^\w./-])([A-Z]{3,}(?:-[A-Z]{3,})+)(?:\.md)?\b`)
	// protocolTerms are capitals-with-hyphens words that name protocol
	// values, not documents.
	protocolTerms = map[string]bool{"UNSIGNED-PAYLOAD": true}
)

// citedDocs returns the documents a text cites, as markdown file names:
// every name ending in .md (outside URLs), and names in capitals cited by
// section or written with hyphens, which get ".md" added.
func citedDocs(text string) []hit {
	out := mentionedDocs(text)
	for i, line := range strings.Split(text, "\n") {
		line = urlRE.ReplaceAllString(line, "")
		for _, re := range []*regexp.Regexp{sectionCiteRE, capsDocRE} {
			for _, m := range re.FindAllStringSubmatch(line, -1) {
				if re == sectionCiteRE && m[2] != "" {
					continue // NAME.md §: mentionedDocs has it
				}
				if re == capsDocRE && (protocolTerms[m[1]] || strings.HasPrefix(line[strings.Index(line, m[1])+len(m[1]):], ".md")) {
					continue
				}
				out = append(out, hit{line: i + 1, text: m[1] + ".md"})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b hit) int { return a.line - b.line })
	return slices.CompactFunc(out, func(a, b hit) bool { return a == b })
}

// No tracked text file names a path that exists on one machine only.
func TestNoMachinePaths(t *testing.T) {
	t.Parallel()
	root, files := tracked(t)
	scanned := 0
	for _, f := range files {
		if f == selfPath {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if errors.Is(err, os.ErrNotExist) {
			continue // deleted in the working tree, not yet in the index
		}
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(b[:min(len(b), 8000)], 0) >= 0 {
			continue // binary, as git decides
		}
		scanned++
		for _, m := range machinePaths(string(b)) {
			t.Errorf("%s:%d: %q is a path on one machine; the repository must stand alone (describe it in the repository instead)", f, m.line, m.text)
		}
	}
	if scanned < 10 {
		t.Errorf("scanned only %d text files", scanned)
	}
}

// hit is a line of a file and what was found on it.
type hit struct {
	line int
	text string
}

// machinePathRE matches home, workspace and scratch directories of one
// machine (/work/, /home/, /root/, /tmp/, macOS /Users/ and /var/folders/,
// Windows C:\Users\), and any ../shared, where they start a path: not in
// the middle of a word or URL path (https://host/home/… is a URL).
var machinePathRE = regexp.MustCompile(`(?:^|[^\w.~/:-])(/(?:work|home|root|tmp|Users|var/folders)/[^\s"'` + "`" + `)\]>]*)|(\.\./shared\b[^\s"'` + "`" + `)\]>]*)|\b([A-Za-z]:\\Users\\[^\s"'` + "`" + `]*)`)

func machinePaths(text string) []hit {
	var out []hit
	for i, line := range strings.Split(text, "\n") {
		for _, m := range machinePathRE.FindAllStringSubmatch(line, -1) {
			out = append(out, hit{line: i + 1, text: strings.TrimRight(m[1]+m[2]+m[3], ".,;:")})
		}
	}
	return out
}

// link is a link target found in a markdown file.
type link struct {
	line   int
	target string
}

var (
	inlineLinkRE = regexp.MustCompile(`!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^\s)>]*)>?(?:\s+(?:"[^"]*"|'[^']*'|\([^)]*\)))?\s*\)`)
	refDefRE     = regexp.MustCompile(`^ {0,3}\[[^\]]+\]:\s*<?([^\s>]+)>?`)
	htmlLinkRE   = regexp.MustCompile(`(?i)\s(?:href|src)\s*=\s*"([^"]*)"`)
	schemeRE     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*:`)
	fenceRE      = regexp.MustCompile("^ {0,3}(```+|~~~+)")
)

// markdownLinks returns the relative link targets of a markdown text:
// inline links and images, reference definitions and HTML href/src, outside
// fenced code blocks and code spans. URLs with a scheme (https:, mailto:)
// and protocol-relative ones are not returned.
func markdownLinks(text string) []link {
	var out []link
	fence := ""
	for i, line := range strings.Split(text, "\n") {
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			switch {
			case fence == "":
				fence = m[1]
				continue
			case strings.HasPrefix(m[1], fence[:1]) && len(m[1]) >= len(fence):
				fence = ""
				continue
			}
		}
		if fence != "" {
			continue
		}
		line = stripCodeSpans(line)
		var targets []string
		for _, m := range inlineLinkRE.FindAllStringSubmatch(line, -1) {
			targets = append(targets, m[1])
		}
		if m := refDefRE.FindStringSubmatch(line); m != nil {
			targets = append(targets, m[1])
		}
		for _, m := range htmlLinkRE.FindAllStringSubmatch(line, -1) {
			targets = append(targets, m[1])
		}
		for _, tg := range targets {
			if tg == "" || schemeRE.MatchString(tg) || strings.HasPrefix(tg, "//") {
				continue
			}
			out = append(out, link{line: i + 1, target: tg})
		}
	}
	return out
}

// stripCodeSpans removes the code spans of a line: a run of n backticks
// up to the next run of exactly n. An unmatched run stays literal text.
func stripCodeSpans(line string) string {
	run := func(i int) int {
		n := 0
		for i+n < len(line) && line[i+n] == '`' {
			n++
		}
		return n
	}
	var b strings.Builder
	for i := 0; i < len(line); {
		if line[i] != '`' {
			b.WriteByte(line[i])
			i++
			continue
		}
		n := run(i)
		end := -1
		for j := i + n; j < len(line); {
			if m := run(j); m > 0 {
				if m == n {
					end = j + m
					break
				}
				j += m
				continue
			}
			j++
		}
		if end < 0 {
			b.WriteString(line[i : i+n])
			i += n
			continue
		}
		i = end
	}
	return b.String()
}

// repoIndex is the tracked files and the directories that hold them.
type repoIndex struct {
	files map[string]bool
	dirs  map[string]bool
}

func newRepoIndex(files []string) repoIndex {
	r := repoIndex{files: map[string]bool{}, dirs: map[string]bool{".": true}}
	for _, f := range files {
		r.files[f] = true
		for d := path.Dir(f); d != "."; d = path.Dir(d) {
			r.dirs[d] = true
		}
	}
	return r
}

var lineAnchorRE = regexp.MustCompile(`^L\d+(?:C\d+)?(?:-L\d+(?:C\d+)?)?$`)

// resolve checks the link target found in file from: its path (relative to
// from's directory, or to the root when it starts with "/") must be a
// tracked file or directory inside the repository, and its fragment a
// heading or anchor of a markdown target (or a line, L12, of another file).
// read returns a tracked file's text.
func (r repoIndex) resolve(from, target string, read func(string) (string, error)) error {
	p, frag, _ := strings.Cut(target, "#")
	p, err := url.PathUnescape(p)
	if err != nil {
		return fmt.Errorf("bad escape: %w", err)
	}
	dest := from
	if p != "" {
		if strings.HasPrefix(p, "/") {
			dest = path.Clean(strings.TrimPrefix(p, "/"))
		} else {
			dest = path.Clean(path.Join(path.Dir(from), p))
		}
		switch {
		case dest == ".." || strings.HasPrefix(dest, "../"):
			return errors.New("points outside the repository")
		case r.dirs[dest]:
			if frag != "" {
				return errors.New("a directory has no anchors")
			}
			return nil
		case !r.files[dest]:
			return fmt.Errorf("%s is not a file of the repository", dest)
		}
	}
	if frag == "" {
		return nil
	}
	frag, err = url.PathUnescape(frag)
	if err != nil {
		return fmt.Errorf("bad escape: %w", err)
	}
	if !strings.HasSuffix(dest, ".md") {
		if lineAnchorRE.MatchString(frag) {
			return nil
		}
		return fmt.Errorf("#%s: only markdown files have heading anchors", frag)
	}
	text, err := read(dest)
	if err != nil {
		return err
	}
	if !slices.Contains(anchors(text), frag) {
		return fmt.Errorf("%s has no heading or anchor #%s (it has %s)", dest, frag, strings.Join(anchors(text), ", "))
	}
	return nil
}

var (
	atxRE      = regexp.MustCompile(`^ {0,3}#{1,6}(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$`)
	setextRE   = regexp.MustCompile(`^ {0,3}(?:=+|-+)[ \t]*$`)
	htmlIDRE   = regexp.MustCompile(`(?i)<a\s[^>]*(?:name|id)\s*=\s*"([^"]+)"`)
	mdLinkRE   = regexp.MustCompile(`!?\[([^\]]*)\]\([^)]*\)`)
	htmlTagRE  = regexp.MustCompile(`<[^>]+>`)
	listItemRE = regexp.MustCompile(`^\s*(?:[-*+]|\d+[.)])\s`)
)

// anchors returns the fragment ids a markdown text defines, as GitHub
// renders them: one per heading (its slug, "-1", "-2"… on repeats) plus
// explicit <a name|id="…">.
func anchors(text string) []string {
	var out []string
	seen := map[string]int{}
	add := func(heading string) {
		s := slug(heading)
		if n, dup := seen[s]; dup {
			seen[s] = n + 1
			s += "-" + strconv.Itoa(n+1)
		} else {
			seen[s] = 0
		}
		out = append(out, s)
	}
	fence := ""
	prev := ""
	for line := range strings.SplitSeq(text, "\n") {
		if m := fenceRE.FindStringSubmatch(line); m != nil {
			switch {
			case fence == "":
				fence = m[1]
			case strings.HasPrefix(m[1], fence[:1]) && len(m[1]) >= len(fence):
				fence = ""
			}
			prev = ""
			continue
		}
		if fence != "" {
			continue
		}
		for _, m := range htmlIDRE.FindAllStringSubmatch(line, -1) {
			out = append(out, m[1])
		}
		switch {
		case atxRE.MatchString(line):
			add(atxRE.FindStringSubmatch(line)[1])
			prev = ""
			continue
		case setextRE.MatchString(line) && strings.TrimSpace(prev) != "" && !listItemRE.MatchString(prev) && !strings.Contains(prev, "|"):
			add(prev)
			prev = ""
			continue
		}
		prev = line
	}
	return out
}

// slug is GitHub's heading id: the rendered text in lower case, with
// spaces as hyphens and every other character that is not a letter, digit,
// hyphen or underscore removed.
func slug(heading string) string {
	h := mdLinkRE.ReplaceAllString(heading, "$1")
	h = htmlTagRE.ReplaceAllString(h, "")
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
			b.WriteRune(r)
		case r == ' ':
			b.WriteByte('-')
		}
	}
	return b.String()
}

// The checkers themselves, on made-up files: each must flag what it exists
// to flag, or the tests above could never fail.
func TestCheckersOnFixtures(t *testing.T) {
	t.Parallel()
	repo := newRepoIndex([]string{"README.md", "docs/a.md", "api/openapi.yaml", "internal/x/x.go"})
	texts := map[string]string{
		"README.md": "# tracegw\n\n## Run it locally\n\n## The API in brief\n\n## Run it locally\n",
		"docs/a.md": "Title\n=====\n\n## `go test` and [links](x.md)\n<a name=\"custom\"></a>\n",
	}
	read := func(f string) (string, error) {
		if s, ok := texts[f]; ok {
			return s, nil
		}
		return "", os.ErrNotExist
	}
	for _, tc := range []struct {
		from, target string
		ok           bool
	}{
		{"README.md", "docs/a.md", true},
		{"README.md", "./docs/a.md#title", true},
		{"README.md", "docs/a.md#go-test-and-links", true},
		{"README.md", "docs/a.md#custom", true},
		{"README.md", "#the-api-in-brief", true},
		{"README.md", "#run-it-locally-1", true},
		{"README.md", "api/openapi.yaml", true},
		{"README.md", "api/openapi.yaml#L12-L20", true},
		{"README.md", "internal/x", true},
		{"docs/a.md", "../README.md#run-it-locally", true},
		{"docs/a.md", "/internal/x/x.go", true},
		{"README.md", "DESIGN.md", false},
		{"README.md", "docs/b.md", false},
		{"README.md", "#the-design", false},
		{"README.md", "docs/a.md#nowhere", false},
		{"README.md", "api/openapi.yaml#paths", false},
		{"README.md", "../shared/API.md", false},
		{"docs/a.md", "../../etc/passwd", false},
		{"README.md", "internal#x", false},
	} {
		err := repo.resolve(tc.from, tc.target, read)
		if (err == nil) != tc.ok {
			t.Errorf("resolve(%s, %s) = %v, want ok %v", tc.from, tc.target, err, tc.ok)
		}
	}

	md := "See [design](DESIGN.md), ![img](docs/x.png \"t\") and [web](https://example.com/a.md).\n" +
		"`[not a link](code.md)` and <a href=\"docs/a.md#custom\">a</a>\n" +
		"```\n[in a fence](fenced.md)\n```\n" +
		"[ref]: docs/ref.md \"title\"\n[mail](mailto:x@example.com) [anchor](#here)\n"
	var got []string
	for _, l := range markdownLinks(md) {
		got = append(got, strconv.Itoa(l.line)+":"+l.target)
	}
	want := []string{"1:DESIGN.md", "1:docs/x.png", "2:docs/a.md#custom", "6:docs/ref.md", "7:#here"}
	if !slices.Equal(got, want) {
		t.Errorf("markdownLinks = %q, want %q", got, want)
	}

	var docs []string
	for _, m := range mentionedDocs("The design is in `DESIGN.md`; see docs/API.md, ../shared/STYLE.md\nand https://example.com/x.md or README.md.") {
		docs = append(docs, strconv.Itoa(m.line)+":"+m.text)
	}
	if want := []string{"1:DESIGN.md", "1:docs/API.md", "1:../shared/STYLE.md", "2:README.md"}; !slices.Equal(docs, want) {
		t.Errorf("mentionedDocs = %q, want %q", docs, want)
	}
	for name, want := range map[string]bool{"README.md": true, "a.md": true, "docs/a.md": true, "../README.md": false, "DESIGN.md": false, "docs/README.md": false} {
		if got := repo.hasDoc("README.md", name); got != want {
			t.Errorf("hasDoc(README.md, %s) = %v, want %v", name, got, want)
		}
	}

	var cited []string
	for _, m := range citedDocs(strings.Join([]string{
		"// The policy of DESIGN.md: 7 days.",
		"// customTime only moves forward (GCS-FACTS §2), see GCS-FACTS.md §4.",
		"// as STYLE.md wants; EMULATOR-FINDINGS says so.",
		"// fine: docs/design.md, README.md, createdBefore (YYYY-MM-DD), UTF-8, X-Request-Id, OBJECT_DELETE, RFC 9562 §5.7",
		"// fine: https://example.com/DESIGN.md",
	}, "\n")) {
		cited = append(cited, strconv.Itoa(m.line)+":"+m.text)
	}
	wantCited := []string{"1:DESIGN.md", "2:GCS-FACTS.md", "3:STYLE.md", "3:EMULATOR-FINDINGS.md", "4:docs/design.md", "4:README.md"}
	if !slices.Equal(cited, wantCited) {
		t.Errorf("citedDocs = %q, want %q", cited, wantCited)
	}
	for name, want := range map[string]bool{"docs/design.md": false, "README.md": true, "GCS-FACTS.md": false} {
		if got := repo.hasDoc("internal/x/x.go", name); got != want {
			t.Errorf("hasDoc(internal/x/x.go, %s) = %v, want %v", name, got, want)
		}
	}

	var found []string
	for _, m := range machinePaths(strings.Join([]string{
		"see /work/shared/API.md for details",
		`dir := "/tmp/tracegw-x"`,
		"cd /home/alice/tracegw && ../shared/STYLE.md",
		"C:\\Users\\bob\\go",
		"fine: https://example.com/home/x, /usr/lib/postgresql/15/bin, t.TempDir(), pick one under `/tmp`",
		"fine: internal/work/x, ./tmp/y, ~/tmp/z",
	}, "\n")) {
		found = append(found, strconv.Itoa(m.line)+":"+m.text)
	}
	wantPaths := []string{"1:/work/shared/API.md", "2:/tmp/tracegw-x", "3:/home/alice/tracegw", "3:../shared/STYLE.md", `4:C:\Users\bob\go`}
	if !slices.Equal(found, wantPaths) {
		t.Errorf("machinePaths = %q, want %q", found, wantPaths)
	}
}
