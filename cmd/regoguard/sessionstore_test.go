package main_test

import (
	"net"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestServeSessionStoreBadConfig(t *testing.T) {
	browser := []string{"--upstream", "http://127.0.0.1:1", "--policy", "testdata/policy",
		"--oidc-well-known", "http://127.0.0.1:1", "--oidc-client-id", "app", "--app-uri", "http://127.0.0.1:8080",
		"--insecure-cookie", "--session-key", strings.Repeat("ab", 32)}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--upstream", "http://127.0.0.1:1", "--no-authn", "--policy", "testdata/policy", "--session-store", "redis://127.0.0.1:1"},
			"--session-store keeps the state of the browser logins: it needs --app-uri"},
		{append(browser, "--session-store", "redis"), "--session-store"},
		{append(browser, "--session-store", "memcached://127.0.0.1:1"), "--session-store"},
		{append(browser, "--session-store", "redis+sentinel://127.0.0.1:26379"), "must name the master"},
		{append(browser, "--session-store", "redis://127.0.0.1:1", "--session-store-timeout", "0s"), "--session-store-timeout"},
		{append(browser, "--session-store", "redis://user:hunter2@127.0.0.1:port"), "--session-store"},
	} {
		res := run(t, nil, append([]string{"serve", "--listen", "127.0.0.1:0"}, c.args...)...)
		if res.code != 2 || !strings.Contains(res.stderr, c.want) {
			t.Errorf("serve %v: exit %d, stderr %q; want 2 naming %s", c.args, res.code, res.stderr, c.want)
		}
		if strings.Contains(res.stderr, "hunter2") {
			t.Errorf("serve %v: the Redis password is in the error: %q", c.args, res.stderr)
		}
	}
}

// A replica whose Redis is down at start starts anyway (it says so), and
// requests that do not carry a browser session never wait on Redis.
func TestServeStartsWithRedisDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close() // nothing listens there now
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	s := startServe(t, []string{"REGOGUARD_SESSION_STORE=redis://:hunter2@" + dead},
		"--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", "testdata/policy", "--api-keys", keys,
		"--oidc-well-known", "http://127.0.0.1:1", "--oidc-client-id", "app", "--app-uri", "http://127.0.0.1:8080",
		"--insecure-cookie", "--session-key", strings.Repeat("ab", 32), "--session-store-timeout", "300ms")
	s.logs.wait(t, regexp.MustCompile(`(Redis does not answer yet)`), nil)
	start := time.Now()
	status, _, body := s.get(t, "GET", "/docs/1", map[string]string{"X-API-Key": "alice-key-0123456789"})
	if status != 200 || body != "upstream says hi to alice" {
		t.Errorf("API key with Redis down: %d %q, want 200", status, body)
	}
	if took := time.Since(start); took > 250*time.Millisecond {
		t.Errorf("the API key request took %v: it waited on Redis", took)
	}
	if strings.Contains(s.logs.String(), "hunter2") {
		t.Error("the Redis password is in the log")
	}
}
