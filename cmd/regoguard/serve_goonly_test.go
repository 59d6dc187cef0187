package main_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/internal/testissuer"
)

// Issue #15: API keys from the environment were Go-only
// (authn.APIKeysFromEnv); serve reads them with --api-keys env:NAME.
func TestServeAPIKeysFromTheEnvironment(t *testing.T) {
	up := newUpstream(t)
	policyFile := writeFile(t, "p.rego", "package httpapi.authz\nallow if input.user.sub == \"alice\"\n")
	s := startServe(t, []string{"LISTEN_KEYS=" + keysFile}, "--listen", "127.0.0.1:0", "--upstream", up.URL,
		"--policy", policyFile, "--api-keys", "env:LISTEN_KEYS")
	if code, _, body := s.get(t, "GET", "/x", map[string]string{"X-API-Key": "alice-key-0123456789"}); code != http.StatusOK {
		t.Fatalf("alice's key from the environment: %d %s", code, body)
	}
	if code, _, _ := s.get(t, "GET", "/x", map[string]string{"X-API-Key": "mallory-key-0123456789"}); code != http.StatusUnauthorized {
		t.Fatalf("an unknown key: %d", code)
	}
	res := run(t, nil, "serve", "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", policyFile, "--api-keys", "env:NO_SUCH_VARIABLE")
	if res.code != 2 || !strings.Contains(res.stderr, "NO_SUCH_VARIABLE") {
		t.Fatalf("unset variable: exit %d %q", res.code, res.stderr)
	}
}

// Issue #15: the browser login's scopes were Go-only (BrowserConfig.Scopes);
// serve takes --oidc-scope. The provider here only publishes discovery: the
// test looks at the authorization request serve sends browsers to.
func TestServeOIDCScopes(t *testing.T) {
	op := testissuer.Start(t)
	policyFile := writeFile(t, "p.rego", "package httpapi.authz\nallow if input.user.authenticated\n")
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--policy", policyFile,
		"--oidc-well-known", op.URL, "--oidc-client-id", "c", "--app-uri", "http://127.0.0.1:8080", "--insecure-cookie",
		"--oidc-scope", "groups", "--oidc-scope", "offline_access", "--session-key", "hex:"+strings.Repeat("ab", 32))
	req, _ := http.NewRequest(http.MethodGet, s.addr+"/page", nil)
	req.Header.Set("Accept", "text/html")
	resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || loc.Query().Get("scope") != "openid groups offline_access" {
		t.Fatalf("login redirect: %s %q", resp.Status, resp.Header.Get("Location"))
	}
}
