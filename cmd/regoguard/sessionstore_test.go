package main_test

import (
	"strings"
	"testing"
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
