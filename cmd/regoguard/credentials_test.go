package main_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/regoguard/regoguard/internal/headers"
)

// Issue #22 item 1 through the real `regoguard serve` binary: with
// `--api-key-header X-Auth` the key was verified, then forwarded to the
// upstream and written into the decision log, because authn.APIKeyConfig
// knew the header and authz.Config did not. The middleware now takes the
// credential headers from the authenticator. Probe table: every request
// below carries a key in X-Auth (or a spelling of it); count what got
// through (a wrong status, the header at the upstream, the key in any log
// line: decision log, decision line, access log). Must be 0.
func TestSecurityCustomAPIKeyHeaderNeverLeaks(t *testing.T) {
	up := newReporter(t)
	s := startSecServe(t, up.URL, "--api-key-header", "X-Auth", "--access-log", "--log-decisions",
		"--decision-log-console", "--decision-log-queue", "0")
	cases := []struct {
		name   string
		raw    string
		want   int
		decide bool // a decision is made (and logged)
	}{
		{"reader key, allowed", get("/public/x", "X-Auth", readerKey), 200, true},
		{"admin key, allowed", get("/admin/x", "X-Auth", adminKey), 200, true},
		{"reader key, denied", get("/admin/x", "X-Auth", readerKey), 403, true},
		{"lower-case name", get("/public/x", "x-auth", readerKey), 200, true},
		{"upper-case name", get("/public/x", "X-AUTH", adminKey), 200, true},
		{"with a query", get("/public/x?page=2", "X-Auth", readerKey), 200, true},
		{"a POST with a body", "POST /orders HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\nX-Auth: " + readerKey +
			"\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 200, true},
		{"underscore spelling", get("/public/x", "X_Auth", readerKey), 401, false},
		{"repeated", get("/public/x", "X-Auth", readerKey, "X-Auth", adminKey), 401, false},
		{"repeated in two spellings", get("/admin/x", "X-Auth", readerKey, "x_auth", adminKey), 401, false},
		{"a wrong key", get("/public/x", "X-Auth", "wrong-key-0123456789"), 401, false},
		{"the default header name", get("/public/x", "X-API-Key", readerKey), 401, false},
	}
	through := []string{}
	decisions := 0
	for _, c := range cases {
		if st := send(t, s.addr, c.raw); st != c.want {
			through = append(through, fmt.Sprintf("%s: %d, want %d", c.name, st, c.want))
		}
		if c.decide {
			decisions++
		}
	}
	// The decision log is written synchronously; the access log line comes
	// once the response is written: wait for every one of them.
	deadline := time.Now().Add(10 * time.Second)
	for (strings.Count(s.logs.String(), `msg="Decision Log"`) < decisions || strings.Count(s.logs.String(), "upstream_status") < 6) &&
		time.Now().Before(deadline) {
		sleep()
	}
	logs := s.logs.String()
	if n := strings.Count(logs, `msg="Decision Log"`); n < decisions {
		through = append(through, fmt.Sprintf("%d decision events, want %d: the probe cannot see the decision log", n, decisions))
	}
	for _, key := range []string{readerKey, adminKey, "wrong-key-0123456789"} {
		if strings.Contains(logs, key) {
			through = append(through, "a log line holds the key "+key)
		}
	}
	consumed := headers.NewSet("X-Auth", "X-API-Key", "Authorization")
	got := up.take()
	if len(got) != 6 {
		through = append(through, fmt.Sprintf("the upstream got %d requests, want 6", len(got)))
	}
	for _, g := range got {
		for k, vs := range g.header {
			if consumed.Has(k) {
				through = append(through, fmt.Sprintf("the upstream received %s: %v", k, vs))
			}
			for _, v := range vs {
				if strings.Contains(v, readerKey) || strings.Contains(v, adminKey) {
					through = append(through, "the upstream received the key in "+k)
				}
			}
		}
	}
	t.Logf("%d probes of --api-key-header X-Auth through serve", len(cases))
	if len(through) > 0 {
		t.Errorf("%d leaks of a custom API-key header:\n%s", len(through), strings.Join(through, "\n"))
	}

	// --forward-credentials hands the verified key on, under its own name.
	fwd := startSecServe(t, up.URL, "--api-key-header", "X-Auth", "--forward-credentials")
	if st := send(t, fwd.addr, get("/public/x", "X-Auth", readerKey)); st != 200 {
		t.Fatalf("--forward-credentials: %d", st)
	}
	if g := up.take(); len(g) != 1 || g[0].header.Get("X-Auth") != readerKey {
		t.Errorf("--forward-credentials did not forward the key in X-Auth: %v", g)
	}
}
