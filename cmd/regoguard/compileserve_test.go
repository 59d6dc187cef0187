package main_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/regoguard/regoguard/internal/testopa"
)

const listerKeys = `keys:
  - key: lister-key-0123456789
    subject: svc-list
    claims: {groups: [lister]}
  - key: other-key-0123456789
    subject: svc-other
    claims: {groups: [reader]}
`

// serve --compile-api admin answers as OPA's Compile API does, on the
// admin listener only: the same bodies for the same requests, the same
// error shapes, the same Content-Type.
func TestServeCompileAPIAnswersAsOPA(t *testing.T) {
	opa := testopa.Start(t, "testdata/filter/filters.rego")
	up := newUpstream(t)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", "testdata/filter",
		"--no-authn", "--allow-anonymous", "--admin-listen", "127.0.0.1:0", "--compile-api", "admin")
	admin := "http://" + s.logs.wait(t, adminLine, nil)

	cases := []filterCase{
		{rule: "shared", input: `{"user":"alice"}`, target: "sql+postgresql"},
		{rule: "shared", input: `{"user":"alice"}`, target: "sql+sqlserver",
			options: `{"targetSQLTableMappings":{"sqlserver":{"docs":{"$self":"documents","owner":"owner_id"}}}}`},
		{rule: "owner", input: `{"user":"alice"}`, target: "ucast+all"},
		{rule: "admin", input: `{"user":"admin"}`, target: "sql+mysql"},   // always
		{rule: "nobody", input: `{"user":"alice"}`, target: "sql+sqlite"}, // never
		{rule: "status", input: `{}`, target: "ucast+prisma"},
	}
	for _, c := range cases {
		wantStatus, want := compileAt(t, opa.URL, c, nil)
		status, got := compileAt(t, admin, c, nil)
		if typed, ok := typedNotOPA[c.rule+" "+c.input+" "+c.target+" "+c.options]; ok {
			want = typed // OPA's text differs on purpose (see typedNotOPA)
		}
		if status != wantStatus || got != want {
			t.Errorf("%s %s: serve %d %q, OPA %d %q", c.rule, c.target, status, got, wantStatus, want)
		}
	}

	// Refusals: a rule no target expresses, and bad requests, in OPA's
	// error shape.
	for _, c := range []struct {
		name   string
		c      filterCase
		accept string
	}{
		{"untranslatable", filterCase{rule: "lowered", input: `{"user":"alice"}`, target: "sql+postgresql"}, ""},
		{"no Accept", filterCase{rule: "owner", input: `{}`, target: "sql+postgresql"}, "-"},
		{"two media types", filterCase{rule: "owner", input: `{}`, target: "sql+postgresql"}, "application/vnd.opa.sql.postgresql+json, application/vnd.opa.sql.mysql+json"},
		{"unknown media type", filterCase{rule: "owner", input: `{}`, target: "sql+postgresql"}, "application/vnd.opa.sql.oracle+json"},
		{"bad mappings", filterCase{rule: "owner", input: `{"user":"a"}`, target: "sql+postgresql", options: `{"targetSQLTableMappings":{"docs":{"$self":7}}}`}, ""},
	} {
		hdr := map[string]string{}
		if c.accept != "" {
			hdr["Accept"] = c.accept
			if c.accept == "-" {
				hdr["Accept"] = ""
			}
		}
		wantStatus, want := compileAt(t, opa.URL, c.c, hdr)
		status, got := compileAt(t, admin, c.c, hdr)
		if status != wantStatus || errorShape(t, got) != errorShape(t, want) {
			t.Errorf("%s: serve %d %s\nOPA %d %s", c.name, status, got, wantStatus, want)
		}
	}

	// The proxy listener does not answer it: the request goes to the
	// policy and the upstream like any other.
	if status, _ := compileAt(t, s.addr, cases[0], nil); status != http.StatusForbidden {
		t.Errorf("the proxy listener answered the Compile API: %d", status)
	}
	if up.hits() != 0 {
		t.Errorf("the upstream saw %d requests", up.hits())
	}
}

// errorShape is what must match between two error answers: the code, and
// each detail's code and line. (Messages differ: regoguard says more.)
func errorShape(t *testing.T, body string) string {
	t.Helper()
	var e struct {
		Code   string `json:"code"`
		Errors []struct {
			Code     string `json:"code"`
			Location *struct {
				Row int `json:"row"`
			} `json:"location"`
		} `json:"errors"`
	}
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		t.Fatalf("not an error answer: %q", body)
	}
	var b strings.Builder
	b.WriteString(e.Code)
	for _, d := range e.Errors {
		b.WriteString(" " + d.Code)
		if d.Location != nil {
			b.WriteString("@" + strconv.Itoa(d.Location.Row))
		}
	}
	return b.String()
}

// serve --compile-api authenticated answers on the proxy listener only to
// callers that serve authenticated and the policy allowed; nobody else
// gets a filter, and the upstream never sees the calls.
func TestServeCompileAPIBehindAuthentication(t *testing.T) {
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", listerKeys)
	logFile := filepath.Join(t.TempDir(), "decisions.jsonl")
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", "testdata/filter",
		"--api-keys", keys, "--compile-api", "authenticated", "--decision-log-file", logFile)
	c := filterCase{rule: "owner", input: `{"user":"alice"}`, target: "sql+postgresql"}
	status, body := compileAt(t, s.addr, c, map[string]string{"X-API-Key": "lister-key-0123456789"})
	if status != http.StatusOK || body != `{"result":{"query":"WHERE docs.owner = E'alice'"}}`+"\n" {
		t.Errorf("allowed caller: %d %q", status, body)
	}
	// An adversarial probe: every way in that is not an allowed, verified
	// caller. Count what got a filter: must be 0.
	got := 0
	for name, hdr := range map[string]map[string]string{
		"anonymous":              nil,
		"not allowed by policy":  {"X-API-Key": "other-key-0123456789"},
		"wrong key":              {"X-API-Key": "lister-key-0123456780"},
		"spoofed identity":       {"X-Auth-Request-User": "svc-list", "X-Auth-Request-Groups": "lister"},
		"empty key":              {"X-API-Key": " "},
		"a rule outside filters": nil,
	} {
		cc := c
		if name == "a rule outside filters" {
			hdr = map[string]string{"X-API-Key": "lister-key-0123456789"}
			cc.rule = "../httpapi/authz/allow"
		}
		status, body := compileAt(t, s.addr, cc, hdr)
		if status == http.StatusOK || strings.Contains(body, "result") {
			got++
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	if got != 0 {
		t.Errorf("%d unauthorized calls got a filter", got)
	}
	if up.hits() != 0 {
		t.Errorf("the upstream saw %d Compile API calls", up.hits())
	}
	// The one compilation is logged as OPA logs its compile calls.
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-s.done
	data, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	compiles := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		var ev struct {
			Path   string         `json:"path"`
			Result map[string]any `json:"result"`
			Custom map[string]any `json:"custom"`
		}
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if ev.Custom["type"] == "open-policy-agent/compile" {
			compiles++
			if ev.Path != "filters/owner" || ev.Result["query"] != "WHERE docs.owner = E'alice'" {
				t.Errorf("compile event %s", line)
			}
		}
	}
	if compiles != 1 {
		t.Errorf("%d compile events, want 1:\n%s", compiles, data)
	}

	// --allow-anonymous and --dry-run let requests through the middleware;
	// the Compile API still refuses them (fail closed).
	s2 := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", "testdata/filter",
		"--api-keys", keys, "--compile-api", "authenticated", "--allow-anonymous", "--dry-run")
	for name, hdr := range map[string]map[string]string{
		"anonymous":             nil,
		"not allowed by policy": {"X-API-Key": "other-key-0123456789"},
	} {
		if status, body := compileAt(t, s2.addr, c, hdr); status != http.StatusUnauthorized && status != http.StatusForbidden {
			t.Errorf("%s under --allow-anonymous --dry-run: %d %s", name, status, body)
		}
	}
}

func TestServeCompileAPIConfiguration(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--compile-api", "admin"}, "--compile-api admin needs --admin-listen"},
		{[]string{"--compile-api", "public"}, "--compile-api"},
	} {
		res := run(t, nil, append([]string{"serve", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9", "--policy", "testdata/filter", "--no-authn"}, tc.args...)...)
		if res.code != 2 || !strings.Contains(res.stderr, tc.want) {
			t.Errorf("%v: exit %d, stderr lacks %q:\n%s", tc.args, res.code, tc.want, res.stderr)
		}
	}
	res := run(t, []string{"OPA_HOST=http://127.0.0.1:9"}, "serve", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:9", "--no-authn", "--compile-api", "authenticated")
	if res.code != 2 || !strings.Contains(res.stderr, "needs a local policy") {
		t.Errorf("remote only: exit %d %s", res.code, res.stderr)
	}
}
