package main_test

import (
	"crypto/x509"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/internal/testkit/testsaml"
)

// Issue #15: SAML was Go-only. serve now takes the IdP's metadata (a URL
// here), the SP's key pair and entity ID as flags; a login through the real
// IdP (crewjam/saml's samlidp) reaches the upstream with the assertion's
// subject, the policy decides, the session cookie never reaches the
// upstream, and logout ends the session.
func TestServeSAMLLogin(t *testing.T) {
	idp := testsaml.StartIdP(t)
	key, cert := testsaml.KeyPair(t, "regoguard serve SP")
	dir := t.TempDir()
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyFile, certFile := filepath.Join(dir, "sp.key"), filepath.Join(dir, "sp.crt")
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	policyFile := writeFile(t, "p.rego", `package httpapi.authz
default allow := false
allow if input.user.sub == "alice@example.com"
`)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // serve takes the address over
	appURL := "http://" + addr
	up := newUpstream(t)
	startServe(t, []string{"SAML_SP_KEY=" + keyFile, "SAML_SP_CERT=" + certFile},
		"--listen", addr, "--upstream", up.URL, "--policy", policyFile, "--app-uri", appURL, "--insecure-cookie",
		"--saml-idp-metadata", idp.URL+"/metadata", "--saml-entity-id", "urn:regoguard:test",
		"--session-key", "base64:MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")

	resp, err := http.Get(appURL + "/saml/metadata")
	md := testsaml.Body(t, resp, err)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(md), `entityID="urn:regoguard:test"`) {
		t.Fatalf("SP metadata: %s %s", resp.Status, md)
	}
	idp.Register(t, "serve", md)

	login := func(user string) *http.Client {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar}
		req, _ := http.NewRequest(http.MethodGet, appURL+"/reports/q3?x=1", nil)
		req.Header.Set("Accept", "text/html")
		resp, err := c.Do(req)
		page := testsaml.Body(t, resp, err)
		if !strings.HasPrefix(resp.Request.URL.String(), idp.URL+"/sso") {
			t.Fatalf("not sent to the IdP: at %s (%s)", resp.Request.URL, resp.Status)
		}
		action, v := testsaml.Form(t, page)
		v.Set("user", user)
		v.Set("password", testsaml.Password)
		target, _ := resp.Request.URL.Parse(action)
		resp, err = c.PostForm(target.String(), v)
		answer := testsaml.Body(t, resp, err)
		acs, fields := testsaml.Form(t, answer)
		resp, err = c.PostForm(acs, fields)
		testsaml.Body(t, resp, err)
		return c
	}

	alice := login(testsaml.User)
	resp, err = alice.Get(appURL + "/reports/q3?x=1")
	got := testsaml.Body(t, resp, err)
	if resp.StatusCode != http.StatusOK || string(got) != "upstream says hi to alice@example.com" {
		t.Fatalf("alice: %s %s", resp.Status, got)
	}
	up.mu.Lock()
	for _, h := range up.seen {
		if strings.Contains(h.Get("Cookie"), "regoguard-saml") {
			t.Errorf("the session cookie reached the upstream: %q", h.Get("Cookie"))
		}
	}
	up.mu.Unlock()
	resp, err = alice.PostForm(appURL+"/saml/logout", nil)
	testsaml.Body(t, resp, err)
	resp, err = alice.Get(appURL + "/reports/q3")
	testsaml.Body(t, resp, err)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("after logout: %s", resp.Status)
	}

	before := up.hits()
	bob := login(testsaml.User2)
	resp, err = bob.Get(appURL + "/reports/q3")
	testsaml.Body(t, resp, err)
	if resp.StatusCode != http.StatusForbidden || up.hits() != before {
		t.Fatalf("bob, whom the policy refuses: %s, upstream hit %d times", resp.Status, up.hits()-before)
	}
}
