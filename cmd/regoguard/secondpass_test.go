package main_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
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

// Issue #22, class 4: check --replay reads a collector's upload (JSON
// arrays) one event at a time, as it reads JSON lines: a gzip of three
// million events stays far below 100 MB of resident memory (it took more
// than 1.5 GB, growing, when arrays were read whole), and a single event
// larger than the bound is skipped (a line) or refused (an array element)
// instead of being read into memory.
func TestSecurityReplayMemoryIsBounded(t *testing.T) {
	dir := t.TempDir()
	policyDir := writePolicyDir(t, secPolicy)
	// Three million small JSON values that are not decision events, so
	// that replay only reads them.
	big := filepath.Join(dir, "upload.json.gz")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	zw := gzip.NewWriter(f)
	bw := bufio.NewWriterSize(zw, 1<<16)
	const n = 3_000_000
	var chunk strings.Builder
	for i := range 1000 {
		fmt.Fprintf(&chunk, `,{"n":%d}`, i)
	}
	bw.WriteString(`[{"n":0}`)
	for range n/1000 - 1 {
		bw.WriteString(chunk.String())
	}
	bw.WriteString(chunk.String()[:strings.LastIndex(chunk.String(), ",{")])
	bw.WriteString("]\n")
	if err := bw.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if st, err := os.Stat(big); err == nil {
		t.Logf("%d events, %d KB gzipped", n, st.Size()>>10)
	}

	type probe struct {
		name, file string
		wantOut    string
		wantCode   int
	}
	huge := strings.Repeat("x", 17<<20)
	lineFile := writeFile(t, "huge-line.jsonl", `{"decision_id":"a","input":{"pad":"`+huge+`"}}`+"\n"+`{"decision_id":"b"}`+"\n")
	arrayFile := writeFile(t, "huge-element.json", `[{"decision_id":"b"},{"decision_id":"a","input":{"pad":"`+huge+`"}}]`)
	probes := []probe{
		{"3 million events in a gzipped array", big, "holds no decision events", 1},
		{"a 17 MiB line", lineFile, "event larger than 16 MiB: 1", 0},
		{"a 17 MiB array element", arrayFile, "larger than 16 MiB", 1},
	}
	var through []string
	for _, p := range probes {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		cmd := exec.CommandContext(ctx, binary, "check", "--replay", p.file, "--policy", policyDir)
		cmd.Env = cleanEnv()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		peak := make(chan int64)
		go func() { peak <- peakRSS(cmd.Process.Pid, ctx) }()
		err := cmd.Wait()
		cancel()
		rss := <-peak
		code := 0
		if exit, ok := err.(*exec.ExitError); ok {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", p.name, err)
		}
		t.Logf("%s: exit %d, max RSS %d MiB", p.name, code, rss>>20)
		limit := int64(100 << 20)
		if raceBinary() {
			limit = 300 << 20 // the race detector's shadow memory
		}
		if rss > limit || code != p.wantCode || !strings.Contains(out.String(), p.wantOut) {
			through = append(through, fmt.Sprintf("%s: exit %d, RSS %d MiB (limit %d MiB):\n%s", p.name, code, rss>>20, limit>>20, lastLines(out.String(), 5)))
		}
	}
	t.Logf("replay memory probes: %d, let through: %d", len(probes), len(through))
	if len(through) > 0 {
		t.Fatalf("%d of %d replay probes were not bounded:\n%s", len(through), len(probes), strings.Join(through, "\n"))
	}
}

// peakRSS polls the process's peak resident memory (VmHWM, which starts
// afresh at exec) until it exits or ctx ends, and returns the last reading.
func peakRSS(pid int, ctx context.Context) int64 {
	var last int64
	for ctx.Err() == nil {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			return last
		}
		for _, line := range strings.Split(string(data), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
				var kb int64
				fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
				if kb<<10 > last {
					last = kb << 10
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return last
}

// raceBinary reports whether the regoguard under test was built with the
// race detector (its memory is several times larger).
func raceBinary() bool {
	out, err := exec.Command("go", "version", "-m", binary).Output()
	return err == nil && strings.Contains(string(out), "-race=true")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
