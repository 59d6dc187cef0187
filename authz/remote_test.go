package authz_test

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/internal/testopa"
	"github.com/regoguard/regoguard/policy"
)

var sampleRequests = []struct{ method, target, user string }{
	{"GET", "/public/x", ""},
	{"GET", "/api/orders?x=1", ""},
	{"GET", "/api/orders", "alice"},
	{"POST", "/api/orders", "alice;staff"},
	{"DELETE", "/api/orders/1", "alice"},
	{"DELETE", "/api/orders/1", "root;admin"},
	{"GET", "/hidden/x", "alice"},
	{"PUT", "/other", "bob"},
}

func remote(t testing.TB, url string) *authz.Remote {
	t.Helper()
	r, err := authz.NewRemote(authz.RemoteConfig{URL: url, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// The same policy gives the same decisions in-process and on a real OPA
// server.
func TestRemoteMatchesInProcess(t *testing.T) {
	opa := testopa.Start(t, "testdata/regoguard")
	local := newMiddleware(t, authz.Config{AllowAnonymous: true})
	far := newMiddleware(t, authz.Config{AllowAnonymous: true, Evaluator: remote(t, opa.URL)})
	allowed := 0
	for _, c := range sampleRequests {
		a, b := do(t, local, request(c.method, c.target, c.user)), do(t, far, request(c.method, c.target, c.user))
		if a.status != b.status || a.body["message"] != b.body["message"] || mustJSON(t, a.body["seen"]) != mustJSON(t, b.body["seen"]) {
			t.Errorf("%s %s as %q: in-process %d %v, remote %d %v", c.method, c.target, c.user, a.status, a.body, b.status, b.body)
		}
		if a.status == 200 {
			allowed++
		}
	}
	if allowed == 0 || allowed == len(sampleRequests) {
		t.Fatalf("%d of %d allowed: the sample does not exercise both outcomes", allowed, len(sampleRequests))
	}
}

func TestRemoteAnswers(t *testing.T) {
	opa := testopa.Start(t, "testdata/regoguard", "testdata/conflict/authz.rego")
	ctx := context.Background()
	in := func(doc string) ast.Value {
		v, err := ast.ParseTerm(doc)
		if err != nil {
			t.Fatal(err)
		}
		return v.Value
	}

	undefined, err := authz.NewRemote(authz.RemoteConfig{URL: opa.URL, Decision: "no/such/document"})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := undefined.Eval(ctx, in(`{}`)); err != nil || d.Allow || d.Defined {
		t.Errorf("undefined document: %+v, %v; want an undefined deny", d, err)
	}

	// testdata/conflict is loaded beside testdata/regoguard, in the same
	// package: an input with both headers makes allow conflict, and OPA
	// answers 500.
	d, err := remote(t, opa.URL).Eval(ctx, in(`{"headers": {"x": "1", "y": "1"}, "user": {}, "path_segments": []}`))
	if err == nil || d.Allow || !strings.Contains(err.Error(), "500") {
		t.Errorf("conflicting rules: %+v, %v; want an error naming the 500", d, err)
	}
}

// OPA stopped mid-test: the remote mode refuses with 503, a fallback to the
// in-process engine keeps deciding, and nothing the policy refuses is let
// through.
func TestOPAStoppedMidTest(t *testing.T) {
	opa := testopa.Start(t, "testdata/regoguard")
	remoteOnly := newMiddleware(t, authz.Config{AllowAnonymous: true, Evaluator: remote(t, opa.URL)})
	fallback := newMiddleware(t, authz.Config{AllowAnonymous: true, Evaluator: &authz.Fallback{
		Primary: remote(t, opa.URL), Secondary: engine(t, "testdata/regoguard"),
	}})
	reference := newMiddleware(t, authz.Config{AllowAnonymous: true})

	if res := do(t, remoteOnly, request("GET", "/api/orders", "alice")); res.status != 200 {
		t.Fatalf("before the stop: %d", res.status)
	}
	opa.Stop()
	for _, c := range sampleRequests {
		want := do(t, reference, request(c.method, c.target, c.user)).status
		if got := do(t, remoteOnly, request(c.method, c.target, c.user)).status; got != 503 {
			t.Errorf("remote only, OPA down, %s %s: %d, want 503", c.method, c.target, got)
		}
		if got := do(t, fallback, request(c.method, c.target, c.user)).status; got != want {
			t.Errorf("fallback, OPA down, %s %s as %q: %d, want the policy's %d", c.method, c.target, c.user, got, want)
		}
	}
}

// The engine first and the remote OPA second: before the engine has a
// policy the remote server decides.
func TestFallbackToRemoteUntilPolicyLoaded(t *testing.T) {
	opa := testopa.Start(t, "testdata/regoguard")
	e, err := policy.New(context.Background(), policy.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var fallbacks int
	fb := &authz.Fallback{Primary: e, Secondary: remote(t, opa.URL), OnFallback: func(err error) {
		if !errors.Is(err, policy.ErrNoPolicy) {
			t.Errorf("fell back because of %v, want ErrNoPolicy", err)
		}
		fallbacks++
	}}
	h := newMiddleware(t, authz.Config{Evaluator: fb})
	if res := do(t, h, request("GET", "/api/x", "alice")); res.status != 200 || fallbacks != 1 {
		t.Fatalf("no local policy: %d after %d fallbacks, want 200 from the remote", res.status, fallbacks)
	}
	if res := do(t, h, request("DELETE", "/api/x", "alice")); res.status != 403 {
		t.Fatalf("remote deny: %d", res.status)
	}
	p, err := policy.LoadFiles("testdata/regoguard")
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Load(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	opa.Stop()
	if res := do(t, h, request("GET", "/api/x", "alice")); res.status != 200 || fallbacks != 2 {
		t.Fatalf("local policy loaded: %d after %d fallbacks, want 200 with no new fallback", res.status, fallbacks)
	}
}

// A server that accepts connections and never answers: a real OPA cannot be
// made to hang like this, so this one fault uses a bare listener. The
// decision must end in an error once the timeout passes, not wait forever.
func TestRemoteTimeoutIsBounded(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold the connection open, say nothing
		}
	}()
	r, err := authz.NewRemote(authz.RemoteConfig{URL: "http://" + l.Addr().String(), Timeout: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	d, err := r.Eval(context.Background(), ast.NewObject())
	if err == nil || d.Allow || !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "timeout") {
		t.Fatalf("hung server: %+v, %v; want a timeout error", d, err)
	}
	h := newMiddleware(t, authz.Config{Evaluator: r})
	if res := do(t, h, request("GET", "/api/x", "alice")); res.status != http.StatusServiceUnavailable {
		t.Errorf("hung server through the middleware: %d, want 503", res.status)
	}
}

func TestNewRemoteRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:8181", "ftp://x", "http://"} {
		if _, err := authz.NewRemote(authz.RemoteConfig{URL: u}); err == nil {
			t.Errorf("NewRemote(%q) accepted", u)
		}
	}
}
