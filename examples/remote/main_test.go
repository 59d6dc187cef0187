package main

import (
	"context"
	"net"
	"net/http"
	"testing"

	"github.com/regoguard/regoguard/internal/testopa"
)

// start runs the example on a loopback port until the test ends and returns
// its base URL.
func start(t *testing.T, cfg config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

type check struct {
	path, key string
	status    int
}

var (
	allowed = check{"/finance/q3", "finance-key-0123456789", http.StatusOK}
	denied  = check{"/finance/q3", "sales-key-01234567890", http.StatusForbidden}
	public  = check{"/public", "sales-key-01234567890", http.StatusOK}
	anon    = check{"/public", "", http.StatusUnauthorized}
)

func expect(t *testing.T, base string, checks ...check) {
	t.Helper()
	for _, c := range checks {
		req, _ := http.NewRequest(http.MethodGet, base+c.path, nil)
		if c.key != "" {
			req.Header.Set("X-API-Key", c.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("GET %s with %q: %d, want %d", c.path, c.key, resp.StatusCode, c.status)
		}
	}
}

// opa_host mode: a real OPA server decides with the fastapi-opa policy; once
// it is gone, requests fail closed with 503.
func TestRemote(t *testing.T) {
	opa := testopa.Start(t, "policy")
	base := start(t, config{OPAHost: opa.URL})
	expect(t, base, allowed, denied, public, anon)
	opa.Stop()
	expect(t, base, check{"/finance/q3", "finance-key-0123456789", http.StatusServiceUnavailable})
}

// Fallback: the OPA server decides while it is up; once it is gone, the
// embedded copy of the policy gives the same answers.
func TestRemoteWithFallback(t *testing.T) {
	opa := testopa.Start(t, "policy")
	base := start(t, config{OPAHost: opa.URL, Fallback: true})
	expect(t, base, allowed, denied, public, anon)
	opa.Stop()
	expect(t, base, allowed, denied, public, anon)
}

func TestRemoteNeedsAServer(t *testing.T) {
	if _, err := newHandler(context.Background(), config{}); err == nil {
		t.Fatal("no error without an OPA server")
	}
}
