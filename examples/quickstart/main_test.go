package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"testing"
)

// The example runs for real on a loopback port and answers an allowed and a
// denied request as its policy says.
func TestQuickstart(t *testing.T) {
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
		method, key string
		status      int
		body        string
	}{
		{"GET", "reader-key-0123456789", 200, "notes for rita\n"},
		{"POST", "reader-key-0123456789", 403, ""},
		{"POST", "editor-key-0123456789", 201, "note saved\n"},
		{"GET", "", 401, ""},
		{"GET", "wrong-key-0123456789", 401, ""},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(c.method, base+"/notes", nil)
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
			t.Errorf("%s with %q: %d %q, want %d %q", c.method, c.key, resp.StatusCode, body, c.status, c.body)
		}
	}
}
