package main_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// Issue #14, weakness 3, through the real binary: floods of login/callback
// pairs with no code, a garbage code, a garbage or foreign state, from many
// clients, get no session and never reach the upstream. (That they record
// nothing, so that genuine logins keep working, is
// authn.TestBrowserLoginRecordedAfterExchange and the probes in authn and
// authn/saml, where the store can be observed.)
func TestServeLoginCallbackFlood(t *testing.T) {
	var op *httptest.Server
	op = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/token" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": op.URL, "authorization_endpoint": op.URL + "/authorize",
			"token_endpoint": op.URL + "/token", "jwks_uri": op.URL + "/keys"})
	}))
	t.Cleanup(op.Close)
	up := newUpstream(t)
	policyFile := writeFile(t, "p.rego", "package httpapi.authz\nallow if input.user.authenticated\n")
	s := startServe(t, nil, "--listen", "127.0.0.1:0", "--upstream", up.URL, "--policy", policyFile,
		"--oidc-well-known", op.URL, "--oidc-client-id", "c", "--app-uri", "http://127.0.0.1:8080", "--insecure-cookie",
		"--session-key", "hex:"+strings.Repeat("ab", 32))
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(u string, cookies ...*http.Cookie) *http.Response {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		req.Header.Set("Accept", "text/html")
		for _, c := range cookies {
			req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
		}
		resp, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	sent, through := 0, 0
	var prev string
	for i := range 40 {
		resp := do(s.addr + "/oauth2/login?rd=/p")
		loc, err := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusFound || err != nil {
			t.Fatalf("login %d: %s", i, resp.Status)
		}
		state := loc.Query().Get("state")
		cookies := resp.Cookies()
		for _, q := range []url.Values{
			{"state": {state}},
			{"state": {state}, "code": {"garbage"}},
			{"state": {state}, "code": {""}},
			{"state": {"garbage"}, "code": {"garbage"}},
			{"state": {prev}, "code": {"garbage"}}, // another attempt's state with this cookie
			{"code": {"garbage"}},
		} {
			resp := do(s.addr+"/oauth2/callback?"+q.Encode(), cookies...)
			sent++
			if resp.StatusCode < 400 || strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), ";"), "regoguard=") {
				through++
				t.Errorf("callback %v: %s", q, resp.Status)
			}
		}
		prev = state
	}
	if n := up.hits(); n != 0 {
		through += n
		t.Errorf("the upstream was reached %d times", n)
	}
	t.Logf("%d callbacks through serve, %d let through", sent, through)
}
