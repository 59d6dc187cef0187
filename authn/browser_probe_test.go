package authn

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/authn/internal/testop"
)

// TestBrowserLoginBookkeepingProbe is the adversarial probe for the class
// "login bookkeeping an unauthenticated client can fill or replay" (issue
// #14, weakness 3): many clients each send every malformed or replayed
// callback of the table. What must hold, counted as "let through" when it
// does not: no callback without a fresh, valid code gets a session (a
// session cookie or a redirect into the site), no such callback records
// anything in the store, a replay of a completed callback is refused even by
// a provider that accepts codes twice, and afterwards every client still
// logs in and out for real.
func TestBrowserLoginBookkeepingProbe(t *testing.T) {
	m := testop.Start(t)
	m.ReuseCodes(true) // the provider's own single-use check is not what holds here
	store := &countingStore{SessionStore: NewMemorySessionStore(MemorySessionStoreConfig{MaxLogins: 64, MaxRevocations: 64})}
	app := newTestApp(t, m.Issuer(), m.ClientID, m.ClientSecret, func(c *BrowserConfig) { c.Store = store })
	cbURL := func(q url.Values) string { return app.URL + DefaultCallbackPath + "?" + q.Encode() }

	type attempt struct {
		loc    *url.URL
		cookie *http.Cookie
		state  string
	}
	start := func() attempt {
		loc, lc := startAttempt(t, app, "/p")
		return attempt{loc, lc, loc.Query().Get("state")}
	}
	// Each probe builds one callback request from a fresh attempt a and
	// another attempt b of the same client.
	probes := []struct {
		name string
		req  func(a, b attempt) (string, []*http.Cookie)
	}{
		{"no code", func(a, _ attempt) (string, []*http.Cookie) {
			return cbURL(url.Values{"state": {a.state}}), []*http.Cookie{a.cookie}
		}},
		{"empty code", func(a, _ attempt) (string, []*http.Cookie) {
			return cbURL(url.Values{"state": {a.state}, "code": {""}}), []*http.Cookie{a.cookie}
		}},
		{"garbage code", func(a, _ attempt) (string, []*http.Cookie) {
			return cbURL(url.Values{"state": {a.state}, "code": {"garbage"}}), []*http.Cookie{a.cookie}
		}},
		{"huge code", func(a, _ attempt) (string, []*http.Cookie) {
			return cbURL(url.Values{"state": {a.state}, "code": {strings.Repeat("c", 4000)}}), []*http.Cookie{a.cookie}
		}},
		{"two codes", func(a, _ attempt) (string, []*http.Cookie) {
			return cbURL(url.Values{"state": {a.state}, "code": {"x", "y"}}), []*http.Cookie{a.cookie}
		}},
		{"provider error", func(a, _ attempt) (string, []*http.Cookie) {
			return cbURL(url.Values{"state": {a.state}, "error": {"access_denied"}}), []*http.Cookie{a.cookie}
		}},
		{"no state", func(a, _ attempt) (string, []*http.Cookie) {
			return cbURL(url.Values{"code": {"garbage"}}), []*http.Cookie{a.cookie}
		}},
		{"garbage state", func(a, _ attempt) (string, []*http.Cookie) {
			return cbURL(url.Values{"state": {"garbage"}, "code": {"garbage"}}), []*http.Cookie{a.cookie}
		}},
		{"huge state", func(a, _ attempt) (string, []*http.Cookie) {
			return cbURL(url.Values{"state": {strings.Repeat("s", 5000)}}), []*http.Cookie{a.cookie}
		}},
		{"no login cookie, real code", func(a, _ attempt) (string, []*http.Cookie) {
			return authorize(t, a.loc.String()), nil
		}},
		{"other attempt's cookie renamed", func(a, b attempt) (string, []*http.Cookie) {
			return authorize(t, a.loc.String()), []*http.Cookie{{Name: a.cookie.Name, Value: b.cookie.Value}}
		}},
		{"other attempt's state and cookie, this code", func(a, b attempt) (string, []*http.Cookie) {
			u, _ := url.Parse(authorize(t, a.loc.String()))
			q := u.Query()
			q.Set("state", b.state)
			return cbURL(q), []*http.Cookie{b.cookie}
		}},
		{"garbage cookie value", func(a, _ attempt) (string, []*http.Cookie) {
			return authorize(t, a.loc.String()), []*http.Cookie{{Name: a.cookie.Name, Value: "garbage"}}
		}},
		{"truncated cookie", func(a, _ attempt) (string, []*http.Cookie) {
			return authorize(t, a.loc.String()), []*http.Cookie{{Name: a.cookie.Name, Value: a.cookie.Value[:len(a.cookie.Value)-2]}}
		}},
	}

	const clients = 20
	letThrough, sent := 0, 0
	for c := range clients {
		for _, p := range probes {
			a, b := start(), start()
			u, cookies := p.req(a, b)
			resp, _ := callback(t, u, cookies...)
			sent++
			if resp.StatusCode < 400 || strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), ";"), "regoguard=") {
				letThrough++
				t.Errorf("client %d, %s: %s", c, p.name, resp.Status)
			}
		}
		// One genuine login per client, then its callback replayed three times.
		a := start()
		cb := authorize(t, a.loc.String())
		if resp, _ := callback(t, cb, a.cookie); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("client %d: genuine callback: %s", c, resp.Status)
		}
		for range 3 {
			resp, _ := callback(t, cb, a.cookie)
			sent++
			if resp.StatusCode < 400 || strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), ";"), "regoguard=") {
				letThrough++
				t.Errorf("client %d: replayed callback: %s", c, resp.Status)
			}
		}
	}
	if n := int(store.logins.Load()); n != clients {
		letThrough += n - clients
		t.Errorf("%d logins recorded for %d genuine ones", n, clients)
	}
	// Afterwards every kind of state still works: a fresh browser logs in,
	// logs out, and its copied cookie is refused.
	c, jar, got := app.freshLogin(t, "/after")
	if !strings.Contains(got, "hello") {
		t.Fatalf("login after the probe: %s", got)
	}
	copied := sessionCookie(t, jar, app.URL)
	if resp, _ := app.logout(t, c); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout after the probe: %s", resp.Status)
	}
	req := mustRequest(t, app.URL+"/after-logout")
	req.AddCookie(copied)
	if resp, err := noRedirects(&http.Client{}).Do(req); err != nil || resp.StatusCode == http.StatusOK {
		t.Fatalf("copied cookie after logout: %v %v", resp.Status, err)
	}
	t.Logf("%d probes from %d clients, %d let through", sent, clients, letThrough)
	if letThrough != 0 {
		t.Fatalf("%d of %d probes let through, want 0", letThrough, sent)
	}
}
