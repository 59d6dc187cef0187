package authz_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"testing"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

// closedURL is the URL of a loopback port nothing listens on: a remote OPA
// that is down (connection refused), a real fault.
func closedURL(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr
}

// Each failure is logged once, on the line that has its context (the
// decision line, with the decision ID), not again when the request is
// refused.
func TestEachFailureIsLoggedOnce(t *testing.T) {
	empty, err := policy.New(context.Background(), policy.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	down := remote(t, closedURL(t))
	cases := []struct {
		name string
		eval authz.Evaluator
	}{
		{"remote OPA down", down},
		{"no policy loaded", empty},
		{"fallback with both failing", &authz.Fallback{Primary: empty, Secondary: remote(t, closedURL(t))}},
		{"cache in front of a failing remote", mustCache(t, down)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var buf bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			h := newMiddleware(t, authz.Config{AllowAnonymous: true, Evaluator: c.eval, Logger: logger})
			if res := do(t, h, request(http.MethodGet, "/api/orders", "alice")); res.status != http.StatusServiceUnavailable {
				t.Fatalf("status %d, want 503", res.status)
			}
			var failures []map[string]any
			sc := bufio.NewScanner(&buf)
			for sc.Scan() {
				var line map[string]any
				if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
					t.Fatal(err)
				}
				if line["level"] == "ERROR" || line["level"] == "WARN" {
					failures = append(failures, line)
				}
			}
			if len(failures) != 1 {
				t.Fatalf("%d lines for one failure, want 1:\n%s", len(failures), buf.String())
			}
			if failures[0]["decision_id"] == nil || failures[0]["error"] == nil {
				t.Errorf("the failure's line lacks its decision ID or error: %v", failures[0])
			}
		})
	}
}

func mustCache(t *testing.T, e authz.Evaluator) *authz.Cache {
	t.Helper()
	c, err := authz.NewCache(e, authz.CacheConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return c
}
