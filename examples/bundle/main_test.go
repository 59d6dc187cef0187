package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// The example serves the policy and data of its bundle directory: viewers may
// read orders, only clerks may place them.
func TestBundle(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, "bundle") }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	base := "http://" + ln.Addr().String()
	cases := []struct {
		method, key string
		status      int
		body        string
	}{
		{"GET", "viewer-key-0123456789", 200, "orders (policy revision 2026-11-29.1)\n"},
		{"POST", "viewer-key-0123456789", 403, "no grant for this role"},
		{"POST", "clerk-key-01234567890", 201, "order placed\n"},
		{"GET", "", 401, ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, base+"/orders", nil)
		if c.key != "" {
			req.Header.Set("X-API-Key", c.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || !strings.Contains(string(body), c.body) {
			t.Errorf("%s with %q: %d %q, want %d %q", c.method, c.key, resp.StatusCode, body, c.status, c.body)
		}
	}
}

// A bundle that is not there stops the example with an error naming it.
func TestBundleMissing(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	err = run(context.Background(), ln, "no-such-bundle")
	if err == nil || !strings.Contains(err.Error(), "no-such-bundle") {
		t.Fatalf("run: %v, want an error naming the bundle", err)
	}
}
