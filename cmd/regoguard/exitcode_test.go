package main_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every usage or configuration error exits 2 and names the flag, key or
// command at fault (with the right spelling when it was misspelt); a failure
// at run time exits 1, as the README says.
func TestExitCodesAndMessages(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	typoConf := write("typo.yaml", "policy: [testdata/policy]\npolcy: x\n")
	listConf := write("list.yaml", "policy: [testdata/policy]\ndeny-status: [401, 403]\n")
	mapConf := write("map.yaml", "policy: [testdata/policy]\ndeny-status: {code: 401}\n")
	badInt := write("int.yaml", "policy: [testdata/policy]\ndeny-status: many\n")
	typoKeys := write("keys.yaml", "keys:\n  - key: alice-key-0123456789\n    subjet: alice\n")
	badCases := write("cases.yaml", "cases:\n  - request: {path: /, methd: GET}\n    expect: {allow: maybe}\n")
	brokenDir := filepath.Join(dir, "broken")
	if err := os.Mkdir(brokenDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(brokenDir, "p.rego"), []byte("package httpapi.authz\n\nallow if {\n\tinput.user == nobody\n}\n\ndeny if input.x == somebody\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	unparsableDir := filepath.Join(dir, "unparsable")
	if err := os.Mkdir(unparsableDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(unparsableDir, "p.rego"), []byte("package httpapi.authz\n\nallow if {\n\tinput.user ==\n}\n\ndefault allow := false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	withKeys := func(keys string) []string {
		return []string{"serve", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--api-keys", keys}
	}
	serve := []string{"serve", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--no-authn"}
	cases := []struct {
		name string
		env  []string
		args []string
		code int
		want []string // regular expressions the error output must match
	}{
		{"unknown command", nil, []string{"frobnicate"}, 2, []string{`unknown command "frobnicate"`}},
		{"misspelt command", nil, []string{"serv"}, 2, []string{`unknown command "serv".*did you mean serve\?`}},
		{"misspelt flag", nil, []string{"check", "--polcy", "x"}, 2, []string{`unknown flag: --polcy \(did you mean --policy\?\)`}},
		{"misspelt --version", nil, []string{"--verison"}, 2, []string{`unknown flag: --verison \(did you mean --version\?\)`}},
		{"misspelt --version after a command", nil, []string{"serve", "--verison"}, 2, []string{`unknown flag: --verison \(did you mean 'regoguard version'\?\)`}},
		{"missing flag value", nil, []string{"check", "--policy"}, 2, []string{`flag needs an argument: --policy`}},
		{"misspelt config key", nil, []string{"check", "--config", typoConf, "testdata/cases.yaml"}, 2, []string{`unknown key "polcy".*did you mean "policy"\?`}},
		{"misspelt environment variable", []string{"REGOGUARD_POLCY=x"}, []string{"check", "--policy", "testdata/policy", "testdata/cases.yaml"}, 2, []string{`REGOGUARD_POLCY.*did you mean REGOGUARD_POLICY\?`}},
		{"config list for a single value", nil, []string{"check", "--config", listConf, "testdata/cases.yaml"}, 2, []string{`key "deny-status": want a single value, got a list`}},
		{"config mapping for a value", nil, []string{"check", "--config", mapConf, "testdata/cases.yaml"}, 2, []string{`key "deny-status": want a value of type int, got a mapping`}},
		{"config value of the wrong type", nil, []string{"check", "--config", badInt, "testdata/cases.yaml"}, 2, []string{`key "deny-status": want a value of type int`}},
		{"cases file field misspelt and of the wrong type", nil, []string{"check", "--policy", "testdata/policy", badCases}, 2, []string{
			`cases.yaml:2: cases\[0\]\.request\.methd: unknown field "methd" \(did you mean "method"\?\)`, `(?m)^.*cases.yaml:3: cases\[0\]\.expect\.allow: "maybe" is not a boolean`}},
		{"API key file field misspelt", nil, append(withKeys(typoKeys), "--policy", "testdata/policy"), 2, []string{`--api-keys: .*keys.yaml:3: unknown field "subjet" \(did you mean "subject"\?\)`}},
		{"missing --policy directory", nil, append(serve, "--policy", filepath.Join(dir, "nonexistent")), 2, []string{`--policy: stat .*nonexistent: no such file`}},
		{"missing --policy directory in check", nil, []string{"check", "--policy", filepath.Join(dir, "nonexistent"), "testdata/cases.yaml"}, 2, []string{`--policy: stat`}},
		{"decision nothing defines", nil, append(serve, "--policy", "testdata/policy", "--decision", "httpapi/authx"), 2, []string{`--decision: .*data.httpapi.authx.*packages: httpapi.authz`}},
		{"missing --bundle directory", nil, append(serve, "--bundle", filepath.Join(dir, "nonexistent")), 2, []string{`--bundle: .*nonexistent: no such file`}},
		{"decision a bundle does not define", nil, append(serve, "--bundle", "testdata/policy", "--decision", "httpapi.authx"), 2, []string{`--decision: .*data.httpapi.authx`}},
		{"malformed decision", nil, append(serve, "--policy", "testdata/policy", "--decision", "a//b"), 2, []string{`--decision: .*empty segment`}},
		{"bad log level", nil, append(serve, "--policy", "testdata/policy", "--log-level", "loud"), 2, []string{`--log-level`}},
		{"unknown input layout", nil, append(serve, "--policy", "testdata/policy", "--input-layout", "django"), 2, []string{`--input-layout`}},
		{"unknown trace exporter", []string{"OTEL_TRACES_EXPORTER=zipkin"}, append(serve, "--policy", "testdata/policy"), 2, []string{`OTEL_TRACES_EXPORTER: "zipkin" is not one of otlp, none`}},
		{"unknown OTLP protocol", []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL=http/json"}, append(serve, "--policy", "testdata/policy"), 2, []string{`OTEL_EXPORTER_OTLP_PROTOCOL: "http/json" is not one of`}},
		{"positional argument to serve", nil, append(serve, "extra"), 2, []string{`unknown command "extra"|accepts 0 arg`}},
		// Run-time failures: 1.
		{"a policy that does not compile", nil, []string{"check", "--policy", brokenDir, "testdata/cases.yaml"}, 1, []string{
			`(?m)^regoguard: 2 errors in the policy:$`,
			`(?m)^.*p.rego:4:\d+: rego_unsafe_var_error: var nobody is unsafe\n\t\tinput.user == nobody\n\t\t\^$`,
			`(?m)^.*p.rego:7:\d+: rego_unsafe_var_error: var somebody is unsafe\n\tdeny if input.x == somebody\n\t {8}\^$`}},
		{"a policy that does not parse", nil, []string{"check", "--policy", unparsableDir, "testdata/cases.yaml"}, 1, []string{
			`(?m)^.*p.rego:5:1: rego_parse_error: unexpected } token\n\t}\n\t\^$`}},
		{"a failing expectation", nil, []string{"check", "--policy", "testdata/policy", "testdata/wrong.yaml"}, 1, nil},
		{"listen address taken", nil, []string{"serve", "--listen", "256.0.0.1:1", "--upstream", "http://127.0.0.1:1", "--no-authn", "--policy", "testdata/policy"}, 1, []string{`--listen`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := run(t, c.env, c.args...)
			if res.code != c.code {
				t.Errorf("exit %d, want %d\nstderr: %s", res.code, c.code, res.stderr)
			}
			for _, w := range c.want {
				if !regexp.MustCompile(w).MatchString(res.stderr) {
					t.Errorf("stderr does not match %s:\n%s", w, res.stderr)
				}
			}
			if strings.Contains(res.stderr, "Usage:") {
				t.Errorf("a usage error printed the whole usage:\n%s", res.stderr)
			}
		})
	}
}

// --decision takes the package name as written in Rego (dots) as well as a
// path (slashes).
func TestDecisionAsPackageName(t *testing.T) {
	for _, decision := range []string{"httpapi.authz", "httpapi/authz", "data.httpapi.authz"} {
		res := run(t, nil, "check", "--policy", "testdata/policy", "--body", "--decision", decision, "testdata/cases.yaml")
		if res.code != 0 {
			t.Errorf("--decision %s: exit %d\n%s%s", decision, res.code, res.stdout, res.stderr)
		}
	}
}
