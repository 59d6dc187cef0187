package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

// The example runs on a loopback port; its policy judges each GraphQL
// operation by its kind and the fields it selects.
func TestGraphQL(t *testing.T) {
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
	const (
		staff = "staff-key-01234567890"
		hr    = "hr-key-0123456789abcd"
		names = `query Names { employees { name } }`
		pay   = `query Pay($dept: String!) { employees(dept: $dept) { name salary } }`
	)
	cases := []struct {
		key, query string
		status     int
	}{
		{staff, names, 200},
		{staff, pay, 403},
		{hr, pay, 200},
		{hr, `mutation Raise { raise(id: 1) { salary } }`, 403},
		{staff, names + "\n" + `mutation Drop { drop }`, 403},
		{staff, `query { employees {`, 400},
		{"", names, 401},
	}
	for _, c := range cases {
		body := fmt.Sprintf(`{"query": %q}`, c.query)
		req, _ := http.NewRequest(http.MethodPost, "http://"+ln.Addr().String()+"/graphql", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if c.key != "" {
			req.Header.Set("X-API-Key", c.key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != c.status {
			t.Errorf("%q with %q: %d %s, want %d", c.query, c.key, resp.StatusCode, got, c.status)
		}
		if c.status == 200 && !strings.Contains(string(got), fmt.Sprintf(`"received": %d`, len(body))) {
			t.Errorf("%q: the handler did not get the whole body: %s", c.query, got)
		}
	}
}
