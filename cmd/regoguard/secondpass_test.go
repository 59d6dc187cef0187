package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"strings"
	"syscall"
	"testing"
	"time"
)

// Issue #22, class 5: a password (or a token passed as a user name) in a
// URL given to serve reaches no log line and no error message: the
// upstream, the remote OPA, the decision-log collector, bundle servers,
// the OpenID Provider and the SAML metadata, at start, on each failure and
// at shutdown. Each probe is a secret that must appear nowhere in serve's
// output.
func TestSecurityURLUserinfoNeverLogged(t *testing.T) {
	up := newReporter(t)
	withUser := func(raw, user string) string { return strings.Replace(raw, "://", "://"+user+"@", 1) }
	type probe struct{ name, secret string }
	var probes []probe
	var outputs []string
	secret := func(name string) string {
		s := "pw-" + strings.ReplaceAll(name, " ", "-") + "-0xC0FFEE"
		probes = append(probes, probe{name, s})
		return s
	}

	// A serving process: the upstream, the remote OPA (asked when the local
	// policy fails: it never does here, but it is logged at start) and the
	// decision-log collector (down: every upload fails and is logged).
	s := startSecServe(t, withUser(up.URL, "svc:"+secret("upstream password")),
		"--opa-url", withUser("http://127.0.0.1:1", "opa:"+secret("OPA password")),
		"--decision-log-url", withUser("http://127.0.0.1:1/logs", "dl:"+secret("collector password")),
		"--log-level", "debug", "--access-log", "--shutdown-timeout", "1s")
	for range 3 {
		s.get(t, "GET", "/public/x?a=1", map[string]string{"X-API-Key": readerKey})
		s.get(t, "GET", "/admin/x", map[string]string{"X-API-Key": readerKey})
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(3 * time.Second): // the collector's flush retries
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	outputs = append(outputs, s.logs.String(), s.stdout.String())

	// A bundle server and an OpenID Provider that do not answer (a token as
	// the user name), and configurations that fail at start and print the URL
	// in their error: serve runs for at most a few seconds.
	dir := writePolicyDir(t, secPolicy)
	for _, args := range [][]string{
		{"--no-authn", "--bundle", withUser("http://127.0.0.1:1/bundle.tar.gz", secret("bundle token"))},
		{"--policy", dir, "--oidc-well-known", withUser("http://127.0.0.1:1", "o:"+secret("OpenID Provider password")), "--oidc-client-id", "c"},
		{"--policy", dir, "--no-authn", "--upstream", "http://u:" + secret("bad upstream") + "@[::1"},
		{"--policy", dir, "--no-authn", "--upstream", "ftp://u:" + secret("upstream of another scheme") + "@host/"},
		{"--policy", dir, "--no-authn", "--opa-url", "http://o:" + secret("bad OPA URL") + "@[::1"},
		{"--policy", dir, "--app-uri", "https://app.example", "--saml-idp-metadata", withUser("http://127.0.0.1:1/md", "s:"+secret("SAML metadata password"))},
		{"--policy", dir, "--no-authn", "--decision-log-url", "http://d:" + secret("bad collector URL") + "@[::1"},
	} {
		outputs = append(outputs, serveBriefly(t, append([]string{"--upstream", up.URL, "--log-level", "debug"}, args...)...))
	}

	all := strings.Join(outputs, "\n")
	var through []string
	for _, p := range probes {
		if strings.Contains(all, p.secret) {
			through = append(through, p.name)
		}
	}
	t.Logf("URL userinfo probes: %d, let through: %d", len(probes), len(through))
	if len(through) > 0 {
		t.Fatalf("%d of %d secrets in URLs were printed: %s\n%s", len(through), len(probes), strings.Join(through, ", "), all)
	}
	if !strings.Contains(all, "REDACTED@") {
		t.Errorf("no redacted URL printed at all: the probes did not reach the log lines\n%s", all)
	}

}

// serveBriefly runs serve with args for at most three seconds (or until it
// exits) and returns what it printed.
func serveBriefly(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, append([]string{"serve", "--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = cleanEnv()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	_ = cmd.Run()
	return out.String()
}

// Issue #22, class 2 through serve: credentials in the query, in a Referer
// and in Sec-WebSocket-Protocol reach neither live nor shadow events of the
// decision-log file; the policy's own system.log.mask still applies on top;
// --decision-log-keep-credentials keeps them.
func TestSecurityCredentialsStayOutOfTheDecisionLogFile(t *testing.T) {
	live := "package httpapi.authz\n\nallow if { input.method == \"GET\"; count(input) > 0 }\n"
	mask := "package system.log\n\nmask contains \"/input/headers/x-tenant\"\n"
	dir := writePolicyDir(t, live)
	if err := os.WriteFile(filepath.Join(dir, "mask.rego"), []byte(mask), 0o600); err != nil {
		t.Fatal(err)
	}
	candidate := writePolicyDir(t, "package httpapi.authz\n\nallow if { input.method == \"POST\"; count(input) > 0 }\n")
	up := newReporter(t)
	keys := writeFile(t, "keys.yaml", secKeys)
	type probe struct{ target, header, value, secret string }
	var probes []probe
	for i, name := range []string{"access_token", "code", "id_token", "X-Amz-Signature", "sig", "signature", "token", "api_key", "key"} {
		s := fmt.Sprintf("FileS3cr3t%02dQ", 3*i)
		probes = append(probes, probe{target: "/public/x?page=2&" + name + "=" + s, secret: s})
		s = fmt.Sprintf("FileS3cr3t%02dQ", 3*i+1)
		probes = append(probes, probe{target: "/public/x", header: "Referer", value: "https://app.example/cb?state=st8&" + name + "=" + s, secret: s})
		s = fmt.Sprintf("FileS3cr3t%02dQ", 3*i+2)
		probes = append(probes, probe{target: "/public/x", header: "Sec-WebSocket-Protocol", value: "graphql-ws, eyJhbGciOiJSUzI1NiJ9.e30." + s, secret: s})
	}
	for _, keep := range []bool{false, true} {
		logFile := filepath.Join(t.TempDir(), "decisions.jsonl")
		args := []string{"--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", dir, "--api-keys", keys,
			"--decision-log-file", logFile, "--shadow-policy", candidate}
		if keep {
			args = append(args, "--decision-log-keep-credentials")
		}
		s := startServe(t, nil, args...)
		for _, p := range probes {
			h := map[string]string{"X-API-Key": readerKey, "X-Tenant": "acme-tenant"}
			if p.header != "" {
				h[p.header] = p.value
			}
			if st, _, _ := s.get(t, "GET", p.target, h); st != 200 {
				t.Fatalf("%s: %d", p.target, st)
			}
		}
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		<-s.done
		data, err := os.ReadFile(logFile)
		if err != nil {
			t.Fatal(err)
		}
		text := string(data)
		if n := strings.Count(text, `"regoguard_shadow"`); n != len(probes) {
			t.Errorf("%d shadow events, want %d", n, len(probes))
		}
		if strings.Contains(text, "acme-tenant") || !strings.Contains(text, `"/input/headers/x-tenant"`) {
			t.Errorf("the policy's system.log.mask no longer applies on top:\n%s", text)
		}
		var through []string
		for _, p := range probes {
			if c := strings.Count(text, p.secret); (c > 0) != keep || (keep && c != 2) {
				through = append(through, fmt.Sprintf("%s %s %s: %d times", p.target, p.header, p.value, c))
			}
		}
		if keep {
			if len(through) > 0 {
				t.Errorf("--decision-log-keep-credentials did not keep every credential in live and shadow events:\n%s", strings.Join(through, "\n"))
			}
			continue
		}
		if !strings.Contains(text, `"**REDACTED**"`) || !strings.Contains(text, "st8") || !strings.Contains(text, "graphql-ws") {
			t.Errorf("masked values or what is no credential missing:\n%s", text)
		}
		t.Logf("decision-log file probes: %d requests (live and shadow events), let through: %d", len(probes), len(through))
		if len(through) > 0 {
			t.Fatalf("%d of %d credentials reached the decision-log file:\n%s", len(through), len(probes), strings.Join(through, "\n"))
		}
	}
}
