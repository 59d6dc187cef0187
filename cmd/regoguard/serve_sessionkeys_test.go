package main_test

import (
	"strings"
	"testing"
)

// Through the binary: the base64: form in REGOGUARD_SESSION_KEYS passes the
// key check (serve then stops at the next problem, the plain-http app URI).
func TestServeAcceptsBase64SessionKeys(t *testing.T) {
	res := run(t, []string{"REGOGUARD_SESSION_KEYS=base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}, "serve", "--listen", "127.0.0.1:0",
		"--upstream", "http://127.0.0.1:1", "--policy", "testdata/policy",
		"--oidc-well-known", "http://127.0.0.1:1", "--oidc-client-id", "c", "--app-uri", "http://127.0.0.1:2")
	if res.code != 2 || strings.Contains(res.stderr, "session-key") || !strings.Contains(res.stderr, "InsecureCookies") {
		t.Errorf("exit %d, stderr %q; want the key accepted and the plain-http app URI refused", res.code, res.stderr)
	}
}
