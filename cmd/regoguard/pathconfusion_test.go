package main_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Path confusion: the policy must decide on exactly the path the upstream
// receives. Each raw request target below is sent to a real `regoguard
// serve` in front of a real upstream; a request is refused with 400 when
// its path is ambiguous, and otherwise reaches the upstream only when the
// policy allows the path the upstream sees (here: /public/...).
func TestPathConfusionNeverBypassesThePolicy(t *testing.T) {
	up := newUpstream(t)
	var seenPaths []string
	up.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		up.mu.Lock()
		seenPaths = append(seenPaths, r.URL.EscapedPath())
		up.mu.Unlock()
		_, _ = w.Write([]byte("secret of " + r.URL.Path))
	})
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(`package httpapi.authz
default allow := false
allow if {
	input.path_segments[0] == "public"
	count(input.path_segments) > 1
}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", dir, "--no-authn")
	addr := strings.TrimPrefix(s.addr, "http://")

	cases := []struct {
		target string
		want   int
	}{
		{"/public/page", 200},
		{"/admin", 403},
		{"/public/../admin", 400},
		{"/public/./page", 400},
		{"//admin", 400},
		{"/public//page", 400},
		{"/ADMIN", 403},
		{"/PUBLIC/page", 403}, // the policy is case-sensitive, and so is the path the upstream gets
		{"/public/%2e%2e/admin", 400},
		{"/public/%2E%2E/admin", 400},
		{"/public%2Fadmin", 400},
		{"/public%2fpage", 400},
		{"/public/..%2Fadmin", 400},
		{"/public\\..\\admin", 400},
		{"/public/%5C..%5Cadmin", 400},
		{"/admin.", 403},
		{"/admin;jsessionid=1", 403},
		{"/public;/../admin", 400},
		{"/public/page;x=1", 200},
		{"http://evil.example/admin", 403},
		{"http://evil.example/public/page", 200},
		{"/public/page?../../admin", 200},
		{"/public/page#/../admin", 400},
		{"*", 400},
	}
	for _, c := range cases {
		status := rawRequest(t, addr, "GET "+c.target+" HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n")
		if status != c.want {
			t.Errorf("GET %s: %d, want %d", c.target, status, c.want)
		}
	}
	up.mu.Lock()
	defer up.mu.Unlock()
	for _, p := range seenPaths {
		if !strings.HasPrefix(p, "/public/") || strings.Contains(p, "..") || strings.Contains(strings.ToLower(p), "%2f") {
			t.Errorf("the upstream received %q, a path the policy does not allow", p)
		}
	}
	if len(seenPaths) != 4 {
		t.Errorf("the upstream received %d requests (%q), want the 4 allowed ones", len(seenPaths), seenPaths)
	}
}

// rawRequest sends a request exactly as written, bypassing Go's client,
// which would clean the path first.
func rawRequest(t *testing.T, addr, raw string) int {
	t.Helper()
	conn := dialRaw(t, addr, raw)
	defer conn.Close()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// dialRaw connects to addr and writes raw exactly as given; reads and writes
// on the connection it returns end within 10s.
func dialRaw(t *testing.T, addr, raw string) net.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(conn, raw); err != nil {
		conn.Close()
		t.Fatal(err)
	}
	return conn
}
