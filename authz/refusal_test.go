package authz_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
)

// Every refusal carries its documented code, in the default body and to
// OnRefuse.
func TestRefusalCodes(t *testing.T) {
	unavailable := authn.AuthenticatorFunc(func(*http.Request) (*authn.Identity, error) {
		return nil, fmt.Errorf("discovery: %w", authn.ErrUnavailable)
	})
	readsBody := policyOf(t, "package httpapi.authz\nallow if input.body.n == 1\n")
	cases := []struct {
		name   string
		cfg    authz.Config
		r      *http.Request
		status int
		code   string
	}{
		{"unclean path", authz.Config{}, request("GET", "/a/../b", "alice"), 400, authz.CodeBadRequest},
		{"no credential", authz.Config{}, request("GET", "/api/x", ""), 401, authz.CodeUnauthorized},
		{"policy refuses", authz.Config{}, request("DELETE", "/api/x", "alice"), 403, authz.CodeForbidden},
		{"provider unreachable", authz.Config{Authenticator: unavailable}, request("GET", "/api/x", "alice"), 503, authz.CodeAuthenticationUnavailable},
		{"no decision", authz.Config{Evaluator: failing{}}, request("GET", "/api/x", "alice"), 503, authz.CodePolicyUnavailable},
		{"body too large", authz.Config{Evaluator: readsBody, Body: true, MaxBodyBytes: 8}, func() *http.Request {
			r := httptest.NewRequest("POST", "/api/x", strings.NewReader(`{"n": 1, "padding": "xxxxxxxx"}`))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("X-Test-User", "alice")
			return r
		}(), 413, authz.CodeBodyTooLarge},
	}
	for _, c := range cases {
		res := do(t, newMiddleware(t, c.cfg), c.r.Clone(c.r.Context()))
		if res.status != c.status || res.body["error"] != c.code {
			t.Errorf("%s: %d %v, want %d %q", c.name, res.status, res.body["error"], c.status, c.code)
		}
		var got authz.Refusal
		cfg := c.cfg
		cfg.OnRefuse = func(w http.ResponseWriter, _ *http.Request, ref authz.Refusal) {
			got = ref
			w.WriteHeader(ref.Status)
			_, _ = w.Write([]byte("{}"))
		}
		do(t, newMiddleware(t, cfg), c.r.Clone(c.r.Context()))
		if got.Code != c.code || got.Status != c.status {
			t.Errorf("%s: OnRefuse got %d %q, want %d %q", c.name, got.Status, got.Code, c.status, c.code)
		}
	}
}

// A deny answered with 401 (DenyStatus 401, fastapi-opa's answer, or the
// policy's status) carries WWW-Authenticate as every 401 must; a policy's
// own challenge wins, and a 403 carries none.
func TestDenyAnsweredWith401CarriesAChallenge(t *testing.T) {
	own := policyOf(t, `package httpapi.authz
allow := false
status := 401
headers := {"WWW-Authenticate": "APIKey realm=\"shop\""}
`)
	cases := []struct {
		name string
		cfg  authz.Config
		want string
	}{
		{"deny status 401", authz.Config{DenyStatus: http.StatusUnauthorized}, `Bearer realm="regoguard"`},
		{"policy's status and header", authz.Config{Evaluator: own}, `APIKey realm="shop"`},
		{"deny status 403", authz.Config{}, ""},
	}
	for _, c := range cases {
		res := do(t, newMiddleware(t, c.cfg), request("DELETE", "/api/x", "alice"))
		if got := res.header.Get("WWW-Authenticate"); got != c.want || res.body["error"] != authz.CodeForbidden {
			t.Errorf("%s: %d %v, WWW-Authenticate %q, want %q", c.name, res.status, res.body["error"], got, c.want)
		}
	}
}
