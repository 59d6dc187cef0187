package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/regoguard/regoguard/internal/testopa"
)

// binary is the regoguard command built once for every end-to-end test.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "regoguard-e2e")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = os.Getenv("TEST_REGOGUARD_BINARY") // .ci/run builds it once for every module
	if binary == "" {
		binary = filepath.Join(dir, "regoguard")
		build := exec.Command("go", "build", "-race", "-ldflags", "-X main.version="+stampedVersion, "-o", binary, ".")
		build.Stderr = os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building regoguard:", err)
			os.Exit(1)
		}
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// cleanEnv is this process's environment without the variables regoguard
// reads (REGOGUARD_*, fastapi-opa's names), plus env: a test's binary sees
// only the configuration the test gives it.
func cleanEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "REGOGUARD_") && !strings.HasPrefix(kv, "OPA_HOST=") && !strings.HasPrefix(kv, "OIDC_") && !strings.HasPrefix(kv, "APP_URI=") {
			out = append(out, kv)
		}
	}
	return append(out, env...)
}

// runBound is the longest a command run by run may take: a serve that
// should have refused to start would otherwise serve until killed.
const runBound = time.Minute

// run runs the built binary with a clean environment plus env, and fails
// the test when it has not exited within runBound.
func run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), runBound)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = cleanEnv(env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	res := result{stdout: out.String(), stderr: errOut.String()}
	var exit *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("regoguard %s did not exit within %v:\n%s%s", strings.Join(args, " "), runBound, res.stdout, res.stderr)
	case errors.As(err, &exit):
		res.code = exit.ExitCode()
	case err != nil:
		t.Fatalf("running regoguard: %v", err)
	}
	return res
}

func TestCheckPasses(t *testing.T) {
	res := run(t, nil, "check", "--policy", "testdata/policy", "--body", "testdata/cases.yaml")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"readers may not write", `deny 403 "writers only"`, "httpapi.authz_test.test_reader_reads", "7 passed, 0 failed"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, res.stdout)
		}
	}
}

func TestCheckFailsOnAWrongExpectation(t *testing.T) {
	res := run(t, nil, "check", "--policy", "testdata/policy", "testdata/wrong.yaml")
	if res.code != 1 {
		t.Fatalf("exit %d, want 1\n%s%s", res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stdout, "FAIL this expectation is wrong (testdata/wrong.yaml:2): allow true, want false") {
		t.Errorf("output does not name the failing case, its line and the difference:\n%s", res.stdout)
	}
}

func TestCheckFailsOnAFailingRegoTest(t *testing.T) {
	dir := t.TempDir()
	copyFile(t, "testdata/policy/authz.rego", filepath.Join(dir, "authz.rego"))
	if err := os.WriteFile(filepath.Join(dir, "broken_test.rego"), []byte("package httpapi.authz_test\n\nimport data.httpapi.authz\n\ntest_everyone_reads if authz.allow with input as {\"method\": \"GET\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := run(t, nil, "check", "--policy", dir, "testdata/cases.yaml", "--body")
	if res.code != 1 || !regexp.MustCompile(`(?m)^FAIL\s+httpapi.authz_test.test_everyone_reads\s`).MatchString(res.stdout) {
		t.Fatalf("exit %d, want 1 with the failing Rego test named\n%s%s", res.code, res.stdout, res.stderr)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestCheckJSONAndJUnit(t *testing.T) {
	res := run(t, nil, "check", "--policy", "testdata/policy", "--body", "--format", "json", "testdata/cases.yaml")
	var report struct {
		Results []struct {
			Name string `json:"name"`
			Got  *struct {
				Allow  bool `json:"allow"`
				Status int  `json:"status"`
			} `json:"got"`
		} `json:"results"`
		Failures int `json:"failures"`
	}
	if err := json.Unmarshal([]byte(res.stdout), &report); err != nil || res.code != 0 {
		t.Fatalf("json: exit %d, %v\n%s", res.code, err, res.stdout)
	}
	if len(report.Results) != 7 || report.Failures != 0 || report.Results[3].Got.Status != 403 {
		t.Errorf("json report %+v", report)
	}

	res = run(t, nil, "check", "--policy", "testdata/policy", "--format", "junit", "testdata/wrong.yaml", "--skip-rego-tests")
	var suite struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
		Cases    []struct {
			Failure *struct {
				Message string `xml:"message,attr"`
			} `xml:"failure"`
		} `xml:"testcase"`
	}
	if err := xml.Unmarshal([]byte(res.stdout), &suite); err != nil || res.code != 1 {
		t.Fatalf("junit: exit %d, %v\n%s", res.code, err, res.stdout)
	}
	if suite.Tests != 1 || suite.Failures != 1 || suite.Cases[0].Failure == nil {
		t.Errorf("junit report %+v", suite)
	}
}

func TestCheckHARAndDiff(t *testing.T) {
	res := run(t, nil, "check", "--policy", "testdata/policy", "--body", "--skip-rego-tests",
		"--har", "testdata/session.har", "--as", "alice", "--as-claims", `{"groups": ["reader"]}`,
		"--diff", "testdata/policy-v2")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	lines := strings.Split(res.stdout, "\n")
	var changed []string
	for _, l := range lines {
		if strings.HasPrefix(l, "CHANGED") {
			changed = append(changed, l)
		}
	}
	if len(changed) != 1 || !strings.Contains(changed[0], "GET /docs/drafts/2?x=1") {
		t.Errorf("want exactly the drafts request changed, got %q\n%s", changed, res.stdout)
	}
	if !strings.Contains(res.stdout, "1 of 3 requests change decision") {
		t.Errorf("no diff summary:\n%s", res.stdout)
	}
}

func TestBadConfigurationExitsTwoNamingTheKey(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "regoguard.yaml")
	if err := os.WriteFile(conf, []byte("policy: [testdata/policy]\nformat: text\npolcy: typo\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"unknown file key", nil, []string{"check", "--config", conf, "testdata/cases.yaml"}, `unknown key "polcy"`},
		{"unknown env", []string{"REGOGUARD_POLCY=x"}, []string{"check", "--policy", "testdata/policy", "testdata/cases.yaml"}, "REGOGUARD_POLCY"},
		{"bad env value", []string{"REGOGUARD_DENY_STATUS=many"}, []string{"check", "--policy", "testdata/policy", "testdata/cases.yaml"}, "REGOGUARD_DENY_STATUS (--deny-status)"},
		{"bad flag value", nil, []string{"check", "--policy", "testdata/policy", "--format", "yaml", "testdata/cases.yaml"}, `--format: "yaml" is not one of`},
		{"unknown flag", nil, []string{"check", "--polcy", "x"}, "unknown flag: --polcy"},
		{"bad layout", nil, []string{"check", "--policy", "testdata/policy", "--input-layout", "django", "testdata/cases.yaml"}, "--input-layout"},
		{"bad store", nil, []string{"check", "--policy", "testdata/policy", "--store", "disk", "testdata/cases.yaml"}, `--store: "disk" is not one of`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := run(t, c.env, c.args...)
			if res.code != 2 || !strings.Contains(res.stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want 2 naming %q", res.code, res.stderr, c.want)
			}
		})
	}
}

func TestLayersFlagOverEnvOverFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "regoguard.yaml")
	// The file says junit; the environment says json; the flag says text.
	if err := os.WriteFile(conf, []byte("policy: [testdata/policy]\nformat: junit\nskip-rego-tests: true\nbody: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	file := run(t, nil, "check", "--config", conf, "testdata/cases.yaml")
	env := run(t, []string{"REGOGUARD_FORMAT=json"}, "check", "--config", conf, "testdata/cases.yaml")
	flag := run(t, []string{"REGOGUARD_FORMAT=json"}, "check", "--config", conf, "--format", "text", "testdata/cases.yaml")
	if !strings.HasPrefix(file.stdout, "<?xml") || !strings.HasPrefix(env.stdout, "{") || !strings.HasPrefix(flag.stdout, "RESULT") {
		t.Errorf("file %q..., env %q..., flag %q...", head(file.stdout), head(env.stdout), head(flag.stdout))
	}
	if file.code+env.code+flag.code != 0 {
		t.Errorf("exit codes %d %d %d\n%s", file.code, env.code, flag.code, file.stderr+env.stderr+flag.stderr)
	}
}

func head(s string) string {
	if len(s) > 20 {
		return s[:20]
	}
	return s
}

func TestBenchInProcess(t *testing.T) {
	res := run(t, nil, "bench", "--policy", "testdata/policy", "--body", "--duration", "200ms", "--concurrency", "2", "--json", "testdata/cases.yaml")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	var rep benchJSON
	if err := json.Unmarshal([]byte(res.stdout), &rep); err != nil {
		t.Fatalf("%v\n%s", err, res.stdout)
	}
	results := rep.Results
	if len(results) != 1 || results[0].Mode != "in-process" || results[0].Decisions == 0 || results[0].Errors != 0 ||
		results[0].P50 <= 0 || results[0].Max < results[0].P50 || results[0].Allocs <= 0 || rep.Demo || len(rep.Tuning) == 0 {
		t.Errorf("bench results %+v", rep)
	}
	prof := run(t, nil, "bench", "--policy", "testdata/policy", "--duration", "50ms", "--profile", "testdata/cases.yaml")
	if prof.code != 0 || !strings.Contains(prof.stdout, "most expensive expressions") || !strings.Contains(prof.stdout, "authz.rego:") ||
		!regexp.MustCompile(`(?m)^TIME\s+PER EVAL\s+EVALS`).MatchString(prof.stdout) || !strings.Contains(prof.stdout, "\ntuning:\n  - ") {
		t.Errorf("profile: exit %d, want a per-evaluation column and a tuning section\n%s%s", prof.code, prof.stdout, prof.stderr)
	}
}

type benchJSON struct {
	Demo    bool `json:"demo"`
	Cases   int  `json:"cases"`
	Results []struct {
		Mode      string   `json:"mode"`
		Decisions int      `json:"decisions"`
		Errors    int      `json:"errors"`
		P50       int64    `json:"p50_ns"`
		Max       int64    `json:"max_ns"`
		Allocs    float64  `json:"allocs_per_decision"`
		HitRatio  *float64 `json:"cache_hit_ratio"`
	} `json:"results"`
	Tuning []string `json:"tuning"`
}

// bench with no argument measures the demo, as serve with no flags runs it
// (anonymous callers reach the policy), and advises from what it measured;
// with --decision-cache it measures the cache beside and gives its hit ratio.
func TestBenchWithNoArgumentMeasuresTheDemo(t *testing.T) {
	res := run(t, nil, "bench", "--duration", "100ms", "--decision-cache", "100", "--json")
	var rep benchJSON
	if err := json.Unmarshal([]byte(res.stdout), &rep); res.code != 0 || err != nil {
		t.Fatalf("exit %d, %v\n%s%s", res.code, err, res.stdout, res.stderr)
	}
	if !rep.Demo || rep.Cases != 5 || len(rep.Results) != 2 || rep.Results[0].Errors != 0 || rep.Results[1].Mode != "cached" ||
		rep.Results[1].HitRatio == nil || *rep.Results[1].HitRatio < 0.9 {
		t.Errorf("demo bench: %+v", rep)
	}
	tips := strings.Join(rep.Tuning, "\n")
	for _, want := range []string{"decision cache (--decision-cache 100): 100% of decisions were hits", "--store: makes no difference here", "garbage collector", "latency: "} {
		if !strings.Contains(tips, want) {
			t.Errorf("tuning lacks %q:\n%s", want, tips)
		}
	}
	text := run(t, nil, "bench", "--duration", "50ms")
	if text.code != 0 || !strings.Contains(text.stdout, "the demo: the embedded policy") || !strings.Contains(text.stdout, "\ntuning:\n  - decision cache: a hit costs") {
		t.Errorf("exit %d\n%s%s", text.code, text.stdout, text.stderr)
	}
	if res := run(t, nil, "bench", "--policy", "testdata/policy"); res.code != 2 || !strings.Contains(res.stderr, "give the CASES.yaml") {
		t.Errorf("--policy without cases: exit %d %s", res.code, res.stderr)
	}
}

func TestBenchRemoteSideBySide(t *testing.T) {
	opa := testopa.Start(t, "testdata/policy")
	res := run(t, nil, "bench", "--policy", "testdata/policy", "--body", "--opa-url", opa.URL,
		"--duration", "200ms", "--concurrency", "2", "testdata/cases.yaml")
	if res.code != 0 {
		t.Fatalf("exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{"in-process", "remote", "the throughput of remote"} {
		if !strings.Contains(res.stdout, want) {
			t.Errorf("bench output lacks %q:\n%s", want, res.stdout)
		}
	}
	if regexp.MustCompile(`(?m)^\s*remote\s.*\s[1-9]\d*\s*$`).MatchString(res.stdout) {
		t.Errorf("remote decisions failed:\n%s", res.stdout)
	}
}

// authn.ConfigFromEnv's REGOGUARD_SESSION_KEYS is accepted by serve as the
// --session-key list, not refused as an unknown variable.
func TestSessionKeysEnvironmentName(t *testing.T) {
	res := run(t, []string{"REGOGUARD_SESSION_KEYS=tooshort"}, "serve", "--listen", "127.0.0.1:0",
		"--upstream", "http://127.0.0.1:1", "--policy", "testdata/policy",
		"--oidc-well-known", "http://127.0.0.1:1", "--oidc-client-id", "c", "--app-uri", "http://127.0.0.1:2")
	if res.code != 2 || !strings.Contains(res.stderr, "--session-key #1") {
		t.Errorf("exit %d, stderr %q; want the key checked as --session-key (and refused as too short)", res.code, res.stderr)
	}
}

// TestCheckPassesWithEitherStore: the cases decide the same with every
// store: the default flat one, the read-optimised and the compact ones.
func TestCheckPassesWithEitherStore(t *testing.T) {
	for _, store := range []string{"flat", "read-optimized", "compact"} {
		res := run(t, nil, "check", "--policy", "testdata/policy", "--body", "--store", store, "testdata/cases.yaml")
		if res.code != 0 {
			t.Errorf("--store %s: exit %d\n%s%s", store, res.code, res.stdout, res.stderr)
		}
	}
}
