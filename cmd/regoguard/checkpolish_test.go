package main_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/internal/testopa"
)

func TestCheckDiffFailOnChangeExitsOne(t *testing.T) {
	args := []string{"check", "--policy", "testdata/policy", "--body", "--skip-rego-tests",
		"--har", "testdata/session.har", "--as", "alice", "--as-claims", `{"groups": ["reader"]}`, "--diff", "testdata/policy-v2"}
	if res := run(t, nil, args...); res.code != 0 {
		t.Fatalf("without --fail-on-change: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res := run(t, nil, append(args, "--fail-on-change")...)
	if res.code != 1 || !strings.Contains(res.stderr, "1 of 3 requests change decision") {
		t.Errorf("--fail-on-change: exit %d, want 1 naming the change\n%s%s", res.code, res.stdout, res.stderr)
	}
	// No change, no failure.
	same := []string{"check", "--policy", "testdata/policy", "--body", "--skip-rego-tests", "--diff", "testdata/policy", "--fail-on-change", "testdata/cases.yaml"}
	if res := run(t, nil, same...); res.code != 0 {
		t.Errorf("--fail-on-change against the same policy: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
}

func TestCheckJUnitTimesAreDecimalSeconds(t *testing.T) {
	res := run(t, nil, "check", "--policy", "testdata/policy", "--body", "--format", "junit", "testdata/cases.yaml")
	times := regexp.MustCompile(`time="([^"]*)"`).FindAllStringSubmatch(res.stdout, -1)
	if res.code != 0 || len(times) == 0 {
		t.Fatalf("exit %d, %d times\n%s%s", res.code, len(times), res.stdout, res.stderr)
	}
	for _, m := range times {
		if !regexp.MustCompile(`^\d+\.\d+$`).MatchString(m[1]) {
			t.Errorf("junit time %q is not in decimal seconds", m[1])
		}
	}
}

func TestCheckAsksARemoteOPAAlone(t *testing.T) {
	opa := testopa.Start(t, "testdata/policy")
	res := run(t, nil, "check", "--opa-url", opa.URL, "--body", "testdata/cases.yaml")
	if res.code != 0 || !strings.Contains(res.stdout, `deny 403 "writers only"`) {
		t.Fatalf("check --opa-url alone: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = run(t, nil, "check", "--opa-url", opa.URL, "--body", "testdata/wrong.yaml")
	if res.code != 1 {
		t.Errorf("a wrong expectation against the remote OPA: exit %d, want 1\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := run(t, nil, "check", "testdata/cases.yaml"); res.code != 2 || !strings.Contains(res.stderr, "--opa-url") {
		t.Errorf("no policy at all: exit %d, want 2 naming --policy and --opa-url\n%s", res.code, res.stderr)
	}
}

func TestCheckYAMLErrorsNameFieldAndLine(t *testing.T) {
	cases := writeFile(t, "cases.yaml", `cases:
  - name: one
    request: {method: GET, path: /x}
    expect: {allow: maybe}
  - name: two
    requst: {method: GET, path: /x}
    expect:
      status: [1]
`)
	res := run(t, nil, "check", "--policy", "testdata/policy", cases)
	if res.code != 2 {
		t.Fatalf("exit %d, want 2\n%s", res.code, res.stderr)
	}
	for _, want := range []string{`cases.yaml:4: cases[0].expect.allow: "maybe" is not a boolean`, `cases.yaml:6: cases[1].requst: unknown field "requst"`,
		"cases.yaml:8: cases[1].expect.status: a list is not a whole number"} {
		if !strings.Contains(res.stderr, want) {
			t.Errorf("error lacks %q:\n%s", want, res.stderr)
		}
	}
	for _, goName := range []string{"main.", "!!", "unmarshal", "into bool"} {
		if strings.Contains(res.stderr, goName) {
			t.Errorf("error speaks Go (%q):\n%s", goName, res.stderr)
		}
	}
}

// The demo's cases, checked on a copy of the demo policy: the demo lets
// anonymous callers reach the policy, so its public case needs
// --allow-anonymous; without it the failure says so.
func TestCheckDemoCasesOnACopyOfTheDemoPolicy(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"authz.rego", "cases.yaml"} {
		data, err := os.ReadFile(filepath.Join("demo", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	policyFile, cases := filepath.Join(dir, "authz.rego"), filepath.Join(dir, "cases.yaml")
	res := run(t, nil, "check", "--policy", policyFile, "--allow-anonymous", cases)
	if res.code != 0 || !strings.Contains(res.stdout, "5 passed, 0 failed") {
		t.Errorf("with --allow-anonymous: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = run(t, nil, "check", "--policy", policyFile, cases)
	if res.code != 1 || !strings.Contains(res.stdout, `FAIL anyone reads the public part`) || !strings.Contains(res.stdout, "--allow-anonymous lets it reach the policy") {
		t.Errorf("without --allow-anonymous: exit %d, want the public case to fail naming --allow-anonymous\n%s%s", res.code, res.stdout, res.stderr)
	}
}
