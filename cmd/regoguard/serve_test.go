package main_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/regoguard/regoguard/internal/testopa"
)

// server is a running `regoguard serve`.
type server struct {
	cmd    *exec.Cmd
	addr   string
	stdout strings.Builder
	logs   *logTail
	done   chan error
}

// logTail keeps the process's log and finds lines in it as they come.
type logTail struct {
	mu    sync.Mutex
	lines []string
	cond  *sync.Cond
}

func (l *logTail) add(s string) {
	l.mu.Lock()
	l.lines = append(l.lines, s)
	l.mu.Unlock()
	l.cond.Broadcast()
}

// wait returns the first submatch of re in a log line, waiting for it.
func (l *logTail) wait(t *testing.T, re *regexp.Regexp, exited <-chan struct{}) string {
	t.Helper()
	timeout := time.AfterFunc(30*time.Second, l.cond.Broadcast)
	defer timeout.Stop()
	deadline := time.Now().Add(30 * time.Second)
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		for _, line := range l.lines {
			if m := re.FindStringSubmatch(line); m != nil {
				return m[1]
			}
		}
		select {
		case <-exited:
			t.Fatalf("regoguard exited before logging %s:\n%s", re, strings.Join(l.lines, "\n"))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("regoguard did not log %s within 30s:\n%s", re, strings.Join(l.lines, "\n"))
		}
		l.cond.Wait()
	}
}

func (l *logTail) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}

var (
	listenLine = regexp.MustCompile(`regoguard serving.*listen[=":]+([0-9.]+:[0-9]+)`)
	adminLine  = regexp.MustCompile(`admin listening.*addr[=":]+([0-9.]+:[0-9]+)`)
)

// sleep paces polling loops; it bounds nothing.
func sleep() { time.Sleep(10 * time.Millisecond) }

// startServe runs `regoguard serve args...` on loopback ports and waits
// until it listens.
func startServe(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	s := &server{logs: &logTail{}, done: make(chan error, 1)}
	s.logs.cond = sync.NewCond(&s.logs.mu)
	s.cmd = exec.Command(binary, append([]string{"serve"}, args...)...)
	s.cmd.Env = cleanEnv(env...)
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.logs.add(sc.Text())
		}
	})
	readers.Go(func() {
		data, _ := io.ReadAll(stdout)
		s.stdout.Write(data)
	})
	go func() {
		readers.Wait()
		s.done <- s.cmd.Wait()
		close(exited)
		s.logs.cond.Broadcast()
	}()
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("regoguard log:\n%s", s.logs)
		}
	})
	s.addr = "http://" + s.logs.wait(t, listenLine, exited)
	return s
}

func (s *server) get(t *testing.T, method, path string, headers map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, s.addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// The README's demo: no flags at all (the listen address comes from the
// environment so the test needs no fixed port), and the printed curl
// commands answer as printed.
func TestServeDemoAnswersAsPrinted(t *testing.T) {
	s := startServe(t, []string{"REGOGUARD_LISTEN=127.0.0.1:0"})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(s.logs.String(), "regoguard serving") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cases := []struct {
		method, path, key string
		status            int
	}{
		{"GET", "/public/hello", "", 200},
		{"GET", "/api/orders", "", 401},
		{"GET", "/api/orders", "demo-reader-key", 200},
		{"DELETE", "/api/orders", "demo-reader-key", 403},
		{"DELETE", "/api/orders", "demo-admin-key", 200},
		{"GET", "/api/orders", "wrong-key", 401},
	}
	for _, c := range cases {
		h := map[string]string{}
		if c.key != "" {
			h["X-API-Key"] = c.key
		}
		status, _, body := s.get(t, c.method, c.path, h)
		if status != c.status {
			t.Errorf("%s %s with %q: %d, want %d\n%s", c.method, c.path, c.key, status, c.status, body)
		}
		if status == 200 && c.key == "demo-admin-key" && !strings.Contains(body, `"sub": "admin@demo"`) {
			t.Errorf("the demo upstream does not show the identity: %s", body)
		}
	}
	// The printed instructions name the same keys and answers.
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	<-s.done
	out := s.stdout.String()
	for _, want := range []string{"curl -i " + s.addr + "/public/hello", "X-API-Key: demo-reader-key", "403: only admins may change things"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo instructions lack %q:\n%s", want, out)
		}
	}
}

// upstream is the protected service: it records what reached it.
type upstream struct {
	*httptest.Server
	mu      sync.Mutex
	seen    []http.Header
	release chan struct{} // when set, /slow waits for it
}

func newUpstream(t *testing.T) *upstream {
	u := &upstream{}
	u.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.mu.Lock()
		u.seen = append(u.seen, r.Header.Clone())
		u.mu.Unlock()
		if r.URL.Path == "/slow" {
			<-u.release
		}
		_, _ = io.WriteString(w, "upstream says hi to "+r.Header.Get("X-Auth-Request-User"))
	}))
	t.Cleanup(u.Close)
	return u
}

func (u *upstream) hits() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.seen)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

const keysFile = `keys:
  - key: alice-key-0123456789
    subject: alice
    claims: {groups: [reader], email: alice@example.com}
  - key: bob-key-0123456789
    subject: bob
    claims: {groups: [writer]}
`

func TestServeProxiesOnlyAllowedRequestsWithIdentityHeaders(t *testing.T) {
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", "testdata/policy",
		"--api-keys", keys, "--admin-listen", "127.0.0.1:0")

	status, _, body := s.get(t, "GET", "/docs/1", map[string]string{"X-API-Key": "alice-key-0123456789", "X-Auth-Request-User": "root", "X-Auth-Request-Groups": "admin"})
	if status != 200 || body != "upstream says hi to alice" {
		t.Fatalf("allowed request: %d %q", status, body)
	}
	got := up.seen[0]
	// The API key was consumed: it is not forwarded (issue #14, weakness 4).
	if got.Get("X-Auth-Request-Email") != "alice@example.com" || got.Get("X-Auth-Request-Groups") != "reader" || got.Get("X-API-Key") != "" {
		t.Errorf("upstream saw identity headers %v", got)
	}
	if status, _, _ := s.get(t, "POST", "/docs", map[string]string{"X-API-Key": "alice-key-0123456789"}); status != 403 {
		t.Errorf("denied request: %d", status)
	}
	if status, _, _ := s.get(t, "GET", "/docs/1", map[string]string{"X-Auth-Request-User": "alice"}); status != 401 {
		t.Errorf("a spoofed identity header authenticated a request: %d", status)
	}
	if up.hits() != 1 {
		t.Errorf("upstream saw %d requests, want only the allowed one", up.hits())
	}
}

func TestServeRemoteOnlyAgainstARealOPA(t *testing.T) {
	opa := testopa.Start(t, "testdata/policy")
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	// OPA_HOST is fastapi-opa's name for the remote server.
	s := startServe(t, []string{"OPA_HOST=" + opa.URL}, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--api-keys", keys)
	if status, _, _ := s.get(t, "GET", "/docs/1", map[string]string{"X-API-Key": "alice-key-0123456789"}); status != 200 {
		t.Errorf("remote allow: %d", status)
	}
	if status, _, _ := s.get(t, "GET", "/other", map[string]string{"X-API-Key": "alice-key-0123456789"}); status != 403 {
		t.Errorf("remote deny: %d", status)
	}
	opa.Stop()
	if status, _, _ := s.get(t, "GET", "/docs/1", map[string]string{"X-API-Key": "alice-key-0123456789"}); status != 503 {
		t.Errorf("OPA stopped: %d, want 503", status)
	}
}

func TestServeDrainsInFlightRequestsOnSIGTERM(t *testing.T) {
	up := newUpstream(t)
	up.release = make(chan struct{})
	keys := writeFile(t, "keys.yaml", keysFile)
	policyDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(policyDir, "p.rego"), []byte("package httpapi.authz\nallow := true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", policyDir, "--api-keys", keys)
	result := make(chan int, 1)
	go func() {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", s.addr+"/slow", nil)
		req.Header.Set("X-API-Key", "bob-key-0123456789")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- -1
			return
		}
		resp.Body.Close()
		result <- resp.StatusCode
	}()
	for up.hits() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	s.logs.wait(t, regexp.MustCompile(`(shutting down)`), nil)
	close(up.release)
	if status := <-result; status != 200 {
		t.Errorf("in-flight request: %d, want 200", status)
	}
	if err := <-s.done; err != nil {
		t.Errorf("exit after SIGTERM: %v", err)
	}
}

func TestServeAdminEndpoints(t *testing.T) {
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", "testdata/policy",
		"--api-keys", keys, "--admin-listen", "127.0.0.1:0", "--log-format", "json")
	s.get(t, "GET", "/docs/1", map[string]string{"X-API-Key": "alice-key-0123456789"})
	admin := s.logs.wait(t, adminLine, nil)
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready", "/metrics": `regoguard_requests_total{outcome="allow"} 1`} {
		resp, err := http.Get("http://" + admin + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), want) {
			t.Errorf("%s: %d, want %q in\n%.400s", path, resp.StatusCode, want, body)
		}
	}
}

func TestServeBadConfig(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--upstream", "ftp://x", "--no-authn", "--policy", "testdata/policy"}, "--upstream"},
		{[]string{"--upstream", "http://127.0.0.1:1", "--policy", "testdata/policy"}, "no authentication"},
		{[]string{"--upstream", "http://127.0.0.1:1", "--no-authn"}, "no policy"},
		{[]string{"--upstream", "http://127.0.0.1:1", "--no-authn", "--policy", "testdata/policy", "--log-level", "loud"}, "--log-level"},
		{[]string{"--upstream", "http://127.0.0.1:1", "--api-keys", "/nonexistent.yaml", "--policy", "testdata/policy"}, "--api-keys"},
	} {
		res := run(t, nil, append([]string{"serve", "--listen", "127.0.0.1:0"}, c.args...)...)
		if res.code != 2 || !strings.Contains(res.stderr, c.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want 2 naming %s", c.args, res.code, res.stderr, c.want)
		}
	}
}

func TestServeAuthenticationOnly(t *testing.T) {
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--api-keys", keys, "--no-authz")
	if status, _, body := s.get(t, "DELETE", "/anything", map[string]string{"X-API-Key": "bob-key-0123456789"}); status != 200 || body != "upstream says hi to bob" {
		t.Errorf("authenticated request with --no-authz: %d %q", status, body)
	}
	if status, _, _ := s.get(t, "GET", "/anything", nil); status != 401 {
		t.Errorf("anonymous request with --no-authz: %d, want 401", status)
	}
	if !strings.Contains(s.logs.String(), "authorization is DISABLED") {
		t.Error("no warning that authorization is off")
	}
}

// With the decision cache on, a new policy revision (here: a file change
// picked up by --watch) is obeyed at once, not after the cache's TTL.
func TestServeDecisionCacheFollowsPolicyReloads(t *testing.T) {
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	dir := t.TempDir()
	file := filepath.Join(dir, "p.rego")
	if err := os.WriteFile(file, []byte("package httpapi.authz\nallow := true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", dir, "--watch",
		"--api-keys", keys, "--decision-cache", "100", "--decision-cache-ttl", "1h", "--decision-cache-key", "method,path,user")
	alice := map[string]string{"X-API-Key": "alice-key-0123456789"}
	for range 3 {
		if status, _, _ := s.get(t, "GET", "/x", alice); status != 200 {
			t.Fatalf("before the change: %d", status)
		}
	}
	if err := os.WriteFile(file+".tmp", []byte("package httpapi.authz\nallow := false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(file+".tmp", file); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for status := 200; status == 200; sleep() {
		if time.Now().After(deadline) {
			t.Fatal("the cached allow outlived the policy that gave it")
		}
		status, _, _ = s.get(t, "GET", "/x", alice)
		if status != 200 && status != 403 {
			t.Fatalf("status %d during the reload", status)
		}
	}
}

// Hostile clients: an oversized header block (431), an oversized body the
// policy would have to read (413), and a client that never finishes its
// headers (cut off by the header timeout). None reaches the upstream.
func TestServeHostileClients(t *testing.T) {
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte("package httpapi.authz\nallow if input.body.ok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", dir, "--api-keys", keys,
		"--body", "--max-body-bytes", "1024", "--max-header-bytes", "4096", "--read-header-timeout", "300ms")
	addr := strings.TrimPrefix(s.addr, "http://")

	big := "GET /x HTTP/1.1\r\nHost: a\r\nX-API-Key: alice-key-0123456789\r\nX-Big: " + strings.Repeat("a", 64<<10) + "\r\n\r\n"
	if status := rawRequest(t, addr, big); status != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("64 KiB header: %d, want 431", status)
	}
	body := `{"ok": true, "pad": "` + strings.Repeat("x", 4096) + `"}`
	req := fmt.Sprintf("POST /x HTTP/1.1\r\nHost: a\r\nX-API-Key: alice-key-0123456789\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
	if status := rawRequest(t, addr, req); status != http.StatusRequestEntityTooLarge {
		t.Errorf("4 KiB body over a 1 KiB limit: %d, want 413", status)
	}
	small := `{"ok": true}`
	req = fmt.Sprintf("POST /x HTTP/1.1\r\nHost: a\r\nX-API-Key: alice-key-0123456789\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s", len(small), small)
	if status := rawRequest(t, addr, req); status != 200 {
		t.Errorf("a body within the limit: %d, want 200", status)
	}

	// A slow client: half a request line, then nothing. The server must
	// close the connection on its own (the read ends with EOF, not with
	// this test's own deadline).
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Write([]byte("GET /x HTTP/1.1\r\nHost: a\r\n")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	_, err = io.ReadAll(conn)
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Error("the server kept a slow client's connection open past its header timeout")
	}
	if up.hits() != 1 {
		t.Errorf("the upstream saw %d requests, want only the one within limits", up.hits())
	}
}

// SIGHUP re-reads policy files served without --watch and local bundles
// (which are never polled); a broken file keeps the previous revision.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	for _, flag := range []string{"--policy", "--bundle"} {
		t.Run(flag, func(t *testing.T) {
			up := newUpstream(t)
			keys := writeFile(t, "keys.yaml", keysFile)
			dir := t.TempDir()
			write := func(src string) {
				t.Helper()
				if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(src), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write("package httpapi.authz\nallow := true\n")
			s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, flag, dir, "--api-keys", keys)
			alice := map[string]string{"X-API-Key": "alice-key-0123456789"}
			if status, _, _ := s.get(t, "GET", "/x", alice); status != 200 {
				t.Fatalf("before the change: %d", status)
			}
			write("package httpapi.authz\nallow := false\n")
			// Without a signal nothing changes: no watch, no polling.
			time.Sleep(200 * time.Millisecond)
			if status, _, _ := s.get(t, "GET", "/x", alice); status != 200 {
				t.Fatalf("changed without SIGHUP: %d", status)
			}
			if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			s.logs.wait(t, regexp.MustCompile(`(reloaded on SIGHUP)`), nil)
			if status, _, _ := s.get(t, "GET", "/x", alice); status != 403 {
				t.Fatalf("after SIGHUP: %d, want the new policy's 403", status)
			}
			write("package httpapi.authz\nallow := \n")
			if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			failed := regexp.MustCompile(`(reload on SIGHUP failed|bundle rejected).*p\.rego:\d+`)
			s.logs.wait(t, failed, nil)
			if status, _, _ := s.get(t, "GET", "/x", alice); status != 403 {
				t.Fatalf("after a broken policy: %d, want the previous revision's 403", status)
			}
			// One failure, one line: the layer that logged it with its
			// context (the bundle's name) is not echoed by the signal handler.
			if n := len(regexp.MustCompile(`(?m)^.*level=(ERROR|WARN).*$`).FindAllString(s.logs.String(), -1)); n != 1 {
				t.Errorf("%d warning or error lines for one failed reload, want 1:\n%s", n, s.logs)
			}
		})
	}
}
