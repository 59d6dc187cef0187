package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const coveragePolicy = `package httpapi.authz

allow if {
	input.method == "GET"
}

allow if {
	input.method == "DELETE"
	"admin" in input.user.claims.groups
}
`

func TestCheckCoverageNamesTheLinesNoCaseReached(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(coveragePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := writeFile(t, "cases.yaml", `cases:
  - name: anyone reads
    request: {method: GET, path: /x}
    identity: {sub: alice}
    expect: {allow: true}
`)
	res := run(t, nil, "check", "--policy", dir, cases, "--coverage", "--min-coverage", "90")
	file := filepath.Join(dir, "authz.rego")
	// The GET is allowed by the first rule: the second (lines 7-9) is never
	// evaluated (OPA stops at the first rule that decides a complete rule).
	if res.code != 1 || !strings.Contains(res.stdout, file+": 40.0%, not covered: lines 7-9") ||
		!strings.Contains(res.stderr, "below --min-coverage 90.0%") {
		t.Errorf("exit %d, want 1 naming the uncovered line 9\n%s%s", res.code, res.stdout, res.stderr)
	}
	// A case that deletes as an admin covers the rest.
	full := writeFile(t, "full.yaml", `cases:
  - name: anyone reads
    request: {method: GET, path: /x}
    identity: {sub: alice}
    expect: {allow: true}
  - name: admins delete
    request: {method: DELETE, path: /x}
    identity: {sub: root, claims: {groups: [admin]}}
    expect: {allow: true}
`)
	res = run(t, nil, "check", "--policy", dir, full, "--coverage", "--min-coverage", "100", "--format", "json")
	var rep struct {
		Coverage struct {
			Coverage float64 `json:"coverage"`
		} `json:"coverage"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil || res.code != 0 || rep.Coverage.Coverage != 100 {
		t.Errorf("full coverage: exit %d, %v, %+v\n%s%s", res.code, err, rep, res.stdout, res.stderr)
	}
}

func TestCheckRegoV0PolicyAndTests(t *testing.T) {
	dir := t.TempDir()
	v0 := "package httpapi.authz\n\ndefault allow = false\n\nallow {\n\tinput.method == \"GET\"\n}\n"
	v0test := "package httpapi.authz_test\n\nimport data.httpapi.authz\n\ntest_get {\n\tauthz.allow with input as {\"method\": \"GET\"}\n}\n"
	for name, src := range map[string]string{"authz.rego": v0, "authz_test.rego": v0test} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cases := writeFile(t, "cases.yaml", "cases:\n  - request: {method: GET, path: /x}\n    identity: {sub: alice}\n    expect: {allow: true}\n")
	res := run(t, nil, "check", "--policy", dir, cases)
	if res.code == 0 || !strings.Contains(res.stderr, "opa fmt --v0-v1 -w "+filepath.Join(dir, "authz.rego")) || !strings.Contains(res.stderr, "--rego-version v0") {
		t.Errorf("v0 policy read as v1: exit %d, want an error pointing at opa fmt --v0-v1 and --rego-version v0\n%s", res.code, res.stderr)
	}
	res = run(t, nil, "check", "--policy", dir, cases, "--rego-version", "v0")
	if res.code != 0 || !strings.Contains(res.stdout, "httpapi.authz_test.test_get") || !strings.Contains(res.stdout, "2 passed, 0 failed") {
		t.Errorf("--rego-version v0: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}
