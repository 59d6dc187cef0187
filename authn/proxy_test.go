package authn

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func proxyRequest(remote string, h map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = remote
	for k, v := range h {
		r.Header.Set(k, v)
	}
	return r
}

func TestProxyHeaders(t *testing.T) {
	p, err := NewProxyHeaders(ProxyConfig{TrustedCIDRs: []string{"10.0.0.0/8", "::1/128"}})
	if err != nil {
		t.Fatal(err)
	}
	h := map[string]string{
		"X-Auth-Request-User":               "u123",
		"X-Auth-Request-Email":              "u@example.com",
		"X-Forwarded-Email":                 "u@example.com",
		"X-Auth-Request-Groups":             "admins, dev ,",
		"X-Auth-Request-Preferred-Username": "ursula",
		"X-Forwarded-Access-Token":          "tok",
	}
	for _, remote := range []string{"10.1.2.3:4567", "[::1]:80", "[::ffff:10.0.0.1]:80"} {
		id, err := p.Authenticate(proxyRequest(remote, h))
		if err != nil || id.Subject != "u123" || id.Method != MethodHeader || id.Claims["email"] != "u@example.com" || id.Claims["preferred_username"] != "ursula" {
			t.Fatalf("%s: %v %v", remote, id, err)
		}
		if g, _ := id.Claims["groups"].([]any); len(g) != 2 || g[0] != "admins" || g[1] != "dev" {
			t.Fatalf("groups %#v", id.Claims["groups"])
		}
	}
	// Email alone identifies the caller (X-Forwarded family).
	id, err := p.Authenticate(proxyRequest("10.0.0.1:1", map[string]string{"X-Forwarded-Email": "e@example.com"}))
	if err != nil || id.Subject != "e@example.com" {
		t.Fatalf("%v %v", id, err)
	}

	// Untrusted peers: ignored and stripped, even when they spoof X-Forwarded-For.
	for _, remote := range []string{"192.168.1.1:1", "11.0.0.1:1", "[::2]:1", "garbage", ""} {
		spoof := map[string]string{"X-Forwarded-For": "10.0.0.1"}
		for k, v := range h {
			spoof[k] = v
		}
		r := proxyRequest(remote, spoof)
		_, err := p.Authenticate(r)
		mustNoCredential(t, err)
		for _, name := range IdentityHeaders() {
			if r.Header.Get(name) != "" {
				t.Fatalf("%s: header %s not stripped", remote, name)
			}
		}
		r = proxyRequest(remote, spoof)
		p.Sanitize(r)
		if r.Header.Get("X-Auth-Request-User") != "" || r.Header.Get("X-Forwarded-For") == "" {
			t.Fatalf("%s: Sanitize stripped the wrong headers", remote)
		}
	}
	r := proxyRequest("10.0.0.1:1", h)
	p.Sanitize(r)
	if r.Header.Get("X-Auth-Request-User") == "" {
		t.Fatal("Sanitize stripped a trusted proxy's headers")
	}

	// Trusted peer, no identity headers: no credential.
	_, err = p.Authenticate(proxyRequest("10.0.0.1:1", nil))
	mustNoCredential(t, err)
	// Ambiguous headers are refused, not guessed.
	_, err = p.Authenticate(proxyRequest("10.0.0.1:1", map[string]string{"X-Auth-Request-User": "a", "X-Forwarded-User": "b"}))
	mustRefuse(t, nil, err)
	r = proxyRequest("10.0.0.1:1", map[string]string{"X-Forwarded-User": "a"})
	r.Header.Add("X-Forwarded-User", "b")
	_, err = p.Authenticate(r)
	mustRefuse(t, nil, err)

	if _, err := NewProxyHeaders(ProxyConfig{TrustedCIDRs: []string{"10.0.0.0/33"}}); err == nil {
		t.Fatal("bad CIDR accepted")
	}
	if _, err := NewProxyHeaders(ProxyConfig{}); err == nil {
		t.Fatal("no CIDRs accepted")
	}
}
