package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
)

// The example runs on a loopback port and answers allowed, denied, anonymous
// and exempt requests as its policy says.
func TestEcho(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	base := "http://" + ln.Addr().String()
	cases := []struct {
		method, path, key string
		status            int
		body              string
	}{
		{"GET", "/notes/7", "reader-key-0123456789", 200, "note 7 for rita\n"},
		{"POST", "/notes/", "reader-key-0123456789", 403, ""},
		{"POST", "/notes/", "editor-key-0123456789", 201, "note saved\n"},
		{"GET", "/notes/7", "", 401, ""},
		{"GET", "/healthz", "", 200, "ok\n"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, base+c.path, nil)
		if c.key != "" {
			req.Header.Set("X-API-Key", c.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status || (c.body != "" && string(body) != c.body) {
			t.Errorf("%s %s with %q: %d %q, want %d %q", c.method, c.path, c.key, resp.StatusCode, body, c.status, c.body)
		}
	}
}
