package saml_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authn/saml"
	"github.com/regoguard/regoguard/internal/testkit/testsaml"
)

// countingStore records what reached the real in-memory store.
type countingStore struct {
	authn.SessionStore
	logins atomic.Int32
}

func (c *countingStore) UseLogin(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	ok, err := c.SessionStore.UseLogin(ctx, id, ttl)
	if ok && err == nil {
		c.logins.Add(1)
	}
	return ok, err
}

// postACS posts fields to the ACS with exactly these cookies, as a client
// that keeps a copy of its login cookie would.
func postACS(t *testing.T, acs string, fields url.Values, cookies []*http.Cookie) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, acs, strings.NewReader(fields.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	testsaml.Body(t, resp, err)
	return resp
}

// TestSAMLLoginBookkeepingProbe is the SAML side of the probe for "login
// bookkeeping an unauthenticated client can fill or replay" (issue #14,
// weakness 3): for many clients, every malformed answer posted to the ACS
// with the client's genuine login cookie and RelayState is refused and
// records nothing; only the IdP's verified assertion is recorded, once; its
// replays are refused; and a small store is never filled by the flood.
func TestSAMLLoginBookkeepingProbe(t *testing.T) {
	store := &countingStore{SessionStore: authn.NewMemorySessionStore(authn.MemorySessionStoreConfig{MaxLogins: 16, MaxRevocations: 16})}
	key, cert := testsaml.KeyPair(t, "regoguard test SP")
	app := startSAMLAppWith(t, key, cert, func(c *saml.Config) { c.Store = store })
	acsURL, _ := url.Parse(app.URL + saml.DefaultACSPath)

	b64 := base64.StdEncoding.EncodeToString
	probes := []struct {
		name string
		mod  func(real url.Values) url.Values
	}{
		{"no SAMLResponse", func(v url.Values) url.Values { v.Del("SAMLResponse"); return v }},
		{"empty SAMLResponse", func(v url.Values) url.Values { v.Set("SAMLResponse", ""); return v }},
		{"not base64", func(v url.Values) url.Values { v.Set("SAMLResponse", "!!!"); return v }},
		{"not XML", func(v url.Values) url.Values { v.Set("SAMLResponse", b64([]byte("garbage"))); return v }},
		{"empty Response", func(v url.Values) url.Values {
			v.Set("SAMLResponse", b64([]byte(`<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol"/>`)))
			return v
		}},
		{"truncated", func(v url.Values) url.Values {
			raw, _ := base64.StdEncoding.DecodeString(v.Get("SAMLResponse"))
			v.Set("SAMLResponse", b64(raw[:len(raw)/2]))
			return v
		}},
		{"one byte flipped", func(v url.Values) url.Values {
			raw, _ := base64.StdEncoding.DecodeString(v.Get("SAMLResponse"))
			i := strings.Index(string(raw), "SignatureValue>") + len("SignatureValue>") + 4
			raw[i] ^= 1
			v.Set("SAMLResponse", b64(raw))
			return v
		}},
		{"garbage RelayState", func(v url.Values) url.Values { v.Set("RelayState", "garbage"); return v }},
		{"no RelayState", func(v url.Values) url.Values { v.Del("RelayState"); return v }},
	}
	clone := func(v url.Values) url.Values {
		out := url.Values{}
		for k, vs := range v {
			out[k] = append([]string(nil), vs...)
		}
		return out
	}

	const clients = 8
	sent, letThrough := 0, 0
	through := func(resp *http.Response) bool {
		return resp.StatusCode < 400 || strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), ";"), "regoguard-saml=")
	}
	for i := range clients {
		c := newClient(t)
		acs, real := idpAnswer(t, c, app, "/p", testsaml.User)
		cookies := c.Jar.Cookies(acsURL)
		for _, p := range probes {
			resp := postACS(t, acs, p.mod(clone(real)), cookies)
			sent++
			if through(resp) {
				letThrough++
				t.Errorf("client %d, %s: %s", i, p.name, resp.Status)
			}
		}
		if n := store.logins.Load(); int(n) != i {
			t.Fatalf("client %d: %d assertions recorded before its genuine login, want %d", i, n, i)
		}
		if resp := postACS(t, acs, real, cookies); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("client %d: genuine answer: %s", i, resp.Status)
		}
		for range 2 {
			resp := postACS(t, acs, real, cookies)
			sent++
			if through(resp) {
				letThrough++
				t.Errorf("client %d: replayed answer: %s", i, resp.Status)
			}
		}
	}
	if n := int(store.logins.Load()); n != clients {
		letThrough += max(0, n-clients)
		t.Errorf("%d assertions recorded for %d genuine logins", n, clients)
	}
	t.Logf("%d probes from %d clients, %d let through", sent, clients, letThrough)
	if letThrough != 0 {
		t.Fatalf("%d of %d probes let through, want 0", letThrough, sent)
	}
}

// A logout whose session cannot be revoked (the store is full) says so with
// 503 and keeps the cookie, instead of pretending.
func TestSAMLLogoutThatCannotRevokeSaysSo(t *testing.T) {
	key, cert := testsaml.KeyPair(t, "regoguard test SP")
	store := authn.NewMemorySessionStore(authn.MemorySessionStoreConfig{MaxRevocations: 1})
	app := startSAMLAppWith(t, key, cert, func(c *saml.Config) { c.Store = store })
	login := func() *http.Client {
		c := newClient(t)
		acs, f := idpAnswer(t, c, app, "/", testsaml.User)
		resp, err := c.PostForm(acs, f)
		testsaml.Body(t, resp, err)
		return c
	}
	first := login()
	resp, err := first.PostForm(app.URL+saml.DefaultLogoutPath, nil)
	testsaml.Body(t, resp, err)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("first logout: %s", resp.Status)
	}
	second := login()
	resp, err = second.PostForm(app.URL+saml.DefaultLogoutPath, nil)
	page := testsaml.Body(t, resp, err)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(page), "could not be ended") {
		t.Fatalf("logout that cannot revoke: %s %s", resp.Status, page)
	}
	if status, _ := whoAmI(t, second, app.URL+"/"); status != http.StatusOK {
		t.Fatalf("the cookie was cleared by a failed logout (%d): the user could not try again", status)
	}
}

// Logout is a POST from this site: another site's form cannot log the user
// out (the OIDC flow's rule, now SAML's too).
func TestSAMLLogoutFromAnotherSiteRefused(t *testing.T) {
	app := startSAMLApp(t)
	c := newClient(t)
	acs, f := idpAnswer(t, c, app, "/", testsaml.User)
	resp, err := c.PostForm(acs, f)
	testsaml.Body(t, resp, err)
	req, _ := http.NewRequest(http.MethodPost, app.URL+saml.DefaultLogoutPath, nil)
	req.Header.Set("Origin", "https://evil.example")
	resp, err = c.Do(req)
	testsaml.Body(t, resp, err)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site logout: %s", resp.Status)
	}
	if status, _ := whoAmI(t, c, app.URL+"/"); status != http.StatusOK {
		t.Fatalf("signed out by another site: %d", status)
	}
}
