package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Filter cases run the filter on an in-memory SQLite database and full
// evaluation for each row, and both agree with the rows expected: NULLs,
// LIKE's metacharacters, case, booleans as 0/1, not, mappings.
func TestCheckFilterCases(t *testing.T) {
	res := run(t, nil, "check", "--policy", "testdata/filter/filters.rego", "testdata/filtercases/cases.yaml")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"10 passed, 0 failed", "filter data.filters.prefix", "rows 1,4"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
	// Filter cases beside request cases, in JSON.
	res = run(t, nil, "check", "--policy", "testdata/filter/filters.rego", "testdata/filtercases/cases.yaml", "--format", "json")
	if res.code != 0 || !strings.Contains(res.stdout, `"kind": "filter"`) || !strings.Contains(res.stdout, `"evaluated": [`) {
		t.Errorf("json: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

func TestCheckFilterCaseFailsWithTheRows(t *testing.T) {
	res := run(t, nil, "check", "--policy", "testdata/filter/filters.rego", "testdata/filtercases/wrong.yaml")
	want := "FAIL this expectation is wrong (testdata/filtercases/wrong.yaml:2): the policy selects rows 4, not expected; the policy refuses rows 1, expected"
	if res.code != 1 || !strings.Contains(res.stdout, want) {
		t.Errorf("exit %d, output lacks %q:\n%s%s", res.code, want, res.stdout, res.stderr)
	}
}

func TestCheckFilterCaseErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		body, want string
	}{
		{"filter: {query: data.filters.owner, unknowns: [input.docs], rows: [{id: 1}]}", "filter.expect"},
		{"filter: {query: data.filters.owner, unknowns: [docs], rows: [{id: 1}], expect: []}", "filter.unknowns"},
		{"filter: {query: data.filters.owner, unknowns: [input.docs], rows: [{id: 1}, {id: 1}], expect: []}", "appears twice"},
		{"filter: {query: data.filters.owner, unknowns: [input.docs], rows: [{id: 1, tags: [a]}], expect: []}", `field "tags"`},
		{"filter: {query: data.filters.owner, unknowns: [input.docs], rows: [{name: x}], expect: []}", `no key field "id"`},
		{"filter: {query: data.filters.owner, unknowns: [input.docs], rows: missing.json, expect: []}", "missing.json"},
		{"filter: {query: data.filters.owner, unknowns: [input.docs], rows: [], expect: []}\n    expect: {allow: true}", "only filter"},
	} {
		file := filepath.Join(dir, "cases.yaml")
		if err := os.WriteFile(file, []byte("cases:\n  - name: bad\n    "+tc.body+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		res := run(t, nil, "check", "--policy", "testdata/filter/filters.rego", file)
		if res.code != 2 || !strings.Contains(res.stderr, tc.want) || !strings.Contains(res.stderr, "cases.yaml:2") {
			t.Errorf("%s: exit %d, stderr lacks %q and the line:\n%s", tc.body, res.code, tc.want, res.stderr)
		}
	}
	// A rule that nothing defines is an error, not a filter selecting nothing.
	file := filepath.Join(dir, "cases.yaml")
	if err := os.WriteFile(file, []byte("cases:\n  - filter: {query: data.filters.misspelt, unknowns: [input.docs], rows: [{id: 1}], expect: []}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if res := run(t, nil, "check", "--policy", "testdata/filter/filters.rego", file); res.code == 0 || !strings.Contains(res.stderr+res.stdout, "data.filters.misspelt") {
		t.Errorf("misspelt rule: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}
