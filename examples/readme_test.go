package examples_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var goRunLine = regexp.MustCompile(`go run (\S+)`)

// The examples are run one way, from the repository's root: the table of
// examples/README.md names each example with `go run ./examples/NAME`, and
// every `go run` in the comment at the top of its main.go says the same.
func TestREADMERunsEachExampleOneWay(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	mains, err := filepath.Glob("*/main.go")
	if err != nil || len(mains) < 10 {
		t.Fatalf("%d examples (%v)", len(mains), err)
	}
	for _, m := range mains {
		name := filepath.Dir(m)
		want := "./examples/" + name
		row := ""
		for line := range strings.Lines(string(readme)) {
			if strings.HasPrefix(line, "| ["+name+"]("+name+")") {
				row = line
			}
		}
		if !strings.Contains(row, "go run "+want+"`") && !strings.Contains(row, "go run "+want+" ") {
			t.Errorf("README.md: no table row for %s running `go run %s`: %q", name, want, row)
		}
		src, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		header, _, _ := strings.Cut(string(src), "\npackage ")
		runs := goRunLine.FindAllStringSubmatch(header, -1)
		if len(runs) == 0 {
			t.Errorf("%s: no `go run` in its doc comment", m)
		}
		for _, r := range runs {
			if r[1] != want {
				t.Errorf("%s: `go run %s`, want `go run %s` (from the repository's root)", m, r[1], want)
			}
		}
	}
}
