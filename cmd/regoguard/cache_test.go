package main_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptrace"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/internal/testopa"
	"github.com/regoguard/regoguard/policy"
)

// Weakness 8 of the security review, through the real binary: with a local
// policy that is watched, a remote OPA as its fallback and the decision
// cache on, an allow cached before a revoking policy is written kept
// answering 200 on the same connection. The next request after the reload
// must be refused.
func TestServeDecisionCacheBehindAFallbackFollowsPolicyReloads(t *testing.T) {
	opa := testopa.Start(t, "testdata/policy")
	up := newUpstream(t)
	keys := writeFile(t, "keys.yaml", keysFile)
	dir := t.TempDir()
	file := filepath.Join(dir, "p.rego")
	write := func(src string) {
		t.Helper()
		if err := os.WriteFile(file+".tmp", []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(file+".tmp", file); err != nil {
			t.Fatal(err)
		}
	}
	write("package httpapi.authz\nallow if input.method == \"GET\"\n")
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", dir, "--watch",
		"--opa-url", opa.URL, "--api-keys", keys, "--decision-cache", "100", "--decision-cache-ttl", "1h")

	// One connection for every request.
	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	get := func() (status int, reused bool) {
		t.Helper()
		ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
			GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused },
		})
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.addr+"/x", nil)
		req.Header.Set("X-API-Key", "alice-key-0123456789")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, reused
	}
	for range 3 {
		if status, _ := get(); status != 200 {
			t.Fatalf("before the change: %d", status)
		}
	}

	const revoke = "package httpapi.authz\nallow if input.method == \"HEAD\"\n"
	write(revoke)
	// The revision the binary will log once it has loaded the new file.
	p, err := policy.LoadFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := policy.New(context.Background(), policy.Config{}, p)
	if err != nil {
		t.Fatal(err)
	}
	s.logs.wait(t, regexp.MustCompile(`policy loaded.*(`+regexp.QuoteMeta(e.Revision())+`)`), nil)

	status, reused := get()
	if !reused {
		t.Fatal("the request after the reload came on a new connection")
	}
	if status != 403 {
		t.Fatalf("the first request after the revoking policy was loaded: %d, want 403 (a cached allow outlived its revision)", status)
	}
}

// Weakness 9 of the security review: a cache key that leaves out fields the
// policy reads is refused at start, naming them.
func TestServeRefusesACacheKeyThatLeavesOutWhatThePolicyReads(t *testing.T) {
	// Bounded (run): a binary that accepted the key would serve until killed.
	res := run(t, nil, "serve", "--listen", "127.0.0.1:0", "--upstream", "http://127.0.0.1:1", "--no-authn",
		"--policy", "testdata/policy", "--decision-cache", "100", "--decision-cache-key", "method,path")
	if res.code != 2 || !strings.Contains(res.stderr, "leaves out input fields the policy") ||
		!strings.Contains(res.stderr, "path_segments,user") {
		t.Errorf("exit %d, stderr %q; want exit 2 naming path_segments and user", res.code, res.stderr)
	}
}
