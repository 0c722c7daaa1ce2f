package integration

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// docFiles are the documents whose examples TestDocExamples runs.
var docFiles = []string{"README.md", "docs/integrating.md", "docs/operating.md", "interop/README.md"}

// elsewhere lists the commands the documents show that this test does not
// run itself, and who does. A line starting with one of these prefixes is
// left out of its block.
var elsewhere = []struct{ prefix, by string }{
	{"make run", "TestMakeRunStopsWithMake runs it; the test's own server stands in for it here"},
	{"PAYMENTS_ADDR=:9090 PAYMENTS_PUBLIC_URL=http://localhost:9090 make run", "TestPortAndPublicURLGoTogether (cmd/payments)"},
	{"make test", "CI runs it (.ci/run)"},
	{"make build", "TestMain built the binary this test puts at bin/payments"},
	{"go test -race -count=1 -run TestInteropOIDCProvider", "make test runs TestInteropOIDCProvider"},
	{"go test -race -count=1 -run TestInteropFAPIClientAgainstSandbox", "make test runs TestInteropFAPIClientAgainstSandbox"},
	{"make image ", "needs a container engine; make image-check builds and runs the same binary"},
	{"docker ", "needs a container engine; make image-check builds and runs the same binary"},
	{"make image-check", "CI runs it (.ci/run), after make test"},
}

type docBlock struct {
	file string
	line int
	lang string
	body []string
}

func docBlocks(t *testing.T) []docBlock {
	t.Helper()
	var blocks []docBlock
	for _, name := range docFiles {
		f, err := os.Open(filepath.Join("..", name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(f)
		var cur *docBlock
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			switch {
			case cur == nil && strings.HasPrefix(line, "```"):
				cur = &docBlock{file: name, line: n, lang: strings.TrimPrefix(line, "```")}
			case cur != nil && strings.HasPrefix(line, "```"):
				blocks = append(blocks, *cur)
				cur = nil
			case cur != nil:
				cur.body = append(cur.body, line)
			}
		}
		f.Close()
		if cur != nil {
			t.Fatalf("%s:%d: unclosed code block", name, cur.line)
		}
	}
	return blocks
}

var assignment = regexp.MustCompile(`^#?\s*([A-Z][A-Z0-9_]*)=`)

// TestDocExamples runs every shell example of the documents against a
// sandbox server (http://localhost:8080 and :9090 become its URL), checks
// that configuration examples name only real settings, and that Go
// excerpts are lines of code that is compiled and run (the examples and the
// SDK's example test).
func TestDocExamples(t *testing.T) {
	s := startServer(t)
	work := t.TempDir()
	if err := os.MkdirAll(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binary, filepath.Join(work, "bin", "payments")); err != nil {
		t.Fatal(err)
	}
	help, _ := exec.Command(binary, "--help").CombinedOutput()
	goSources := goExampleSources(t)
	ran := map[string]bool{} // one-line commands already run by an earlier block

	for _, b := range docBlocks(t) {
		name := fmt.Sprintf("%s:%d", b.file, b.line)
		switch b.lang {
		case "sh", "bash":
			if isConfiguration(b.body) {
				for _, l := range b.body {
					if m := assignment.FindStringSubmatch(strings.TrimSpace(l)); m != nil && !strings.Contains(string(help), m[1]) {
						t.Errorf("%s: %s is not a setting of payments --help", name, m[1])
					}
				}
				continue
			}
			t.Run(name, func(t *testing.T) { runShellExample(t, b, s.URL, work, ran) })
		case "go":
			for _, l := range b.body {
				code := strings.TrimSpace(l)
				if i := strings.Index(code, "//"); i >= 0 {
					code = strings.TrimSpace(code[:i])
				}
				if code != "" && !strings.Contains(goSources, code) {
					t.Errorf("%s: %q is in no compiled example (examples/, client/example_test.go): keep the excerpt a copy of tested code", name, code)
				}
			}
		}
	}
}

// isConfiguration reports whether a block only sets variables (comments
// aside).
func isConfiguration(body []string) bool {
	sets := false
	for _, l := range body {
		l = strings.TrimSpace(l)
		switch {
		case assignment.MatchString(l):
			sets = true
		case l != "" && !strings.HasPrefix(l, "#"):
			return false
		}
	}
	return sets
}

func runShellExample(t *testing.T, b docBlock, base, work string, ran map[string]bool) {
	var script []string
	continued := false
	for _, l := range b.body {
		whole := !continued && !strings.HasSuffix(l, "\\")
		continued = strings.HasSuffix(l, "\\")
		command := strings.TrimSpace(l)
		if i := strings.Index(command, " #"); i >= 0 {
			command = strings.TrimSpace(command[:i])
		}
		skip := false
		for _, e := range elsewhere {
			if strings.HasPrefix(strings.TrimSpace(l), e.prefix) {
				t.Logf("not run here: %q (%s)", strings.TrimSpace(l), e.by)
				skip = true
			}
		}
		if skip {
			continue
		}
		if whole && ran[command] {
			t.Logf("already run: %q", command)
			continue
		}
		if whole && command != "" {
			ran[command] = true
		}
		script = append(script, l)
	}
	text := strings.Join(script, "\n")
	text = strings.NewReplacer("http://localhost:8080", base, "http://localhost:9090", base,
		"localhost:8080", strings.TrimPrefix(base, "http://")).Replace(text)
	if strings.TrimSpace(stripComments(text)) == "" {
		return
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// Paths such as examples/... and ./cmd/... are the repository's; the
	// files the example writes (key.jwk) go to the scratch directory.
	prelude := fmt.Sprintf("set -euo pipefail\ncd %q\nexport PATH=%q:\"$PATH\"\n", work, filepath.Join(work, "bin"))
	entries, err := os.ReadDir(repo)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if n := e.Name(); n != "bin" && !strings.HasPrefix(n, ".") {
			prelude += fmt.Sprintf("ln -sfn %q %q\n", filepath.Join(repo, n), n)
		}
	}
	cmd := exec.Command("bash", "-c", prelude+text)
	cmd.Env = append(os.Environ(), "PAYMENTS_PUBLIC_URL="+base)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the example fails (%v):\n%s\noutput:\n%s", err, text, tail(string(out), 4000))
	}
	// A comment promising an answer must be kept.
	if strings.Contains(text, `# 401 with WWW-Authenticate: DPoP error="use_dpop_nonce"`) && !strings.Contains(string(out), "use_dpop_nonce") {
		t.Errorf("the example promises a use_dpop_nonce answer; it printed:\n%s", tail(string(out), 2000))
	}
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if i := strings.Index(l, "#"); i == 0 || (i > 0 && strings.TrimSpace(l[:i]) == "") {
			continue
		}
		b.WriteString(l + "\n")
	}
	return b.String()
}

// goExampleSources returns the text of the compiled examples, whitespace
// runs folded, for excerpt checks.
func goExampleSources(t *testing.T) string {
	t.Helper()
	var files []string
	_ = filepath.Walk(filepath.Join("..", "examples"), func(p string, info os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".go") {
			files = append(files, p)
		}
		return nil
	})
	files = append(files, filepath.Join("..", "client", "example_test.go"))
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(data), "\n") {
			b.WriteString(strings.TrimSpace(l) + "\n")
		}
	}
	return b.String()
}
