package authn

import (
	"github.com/regoguard/regoguard/authn/internal/websession"

	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regoguard/regoguard/authn/internal/testop"
)

var testCookieKey = []byte("0123456789abcdef0123456789abcdef-test-key")

// protect stands in for the authz middleware: authenticate, challenge
// browsers, answer 401 to the rest, then call the protected handler.
func protect(a Authenticator, next func(w http.ResponseWriter, r *http.Request, id *Identity)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := a.Authenticate(r)
		if errors.Is(err, ErrNoCredential) {
			if ch, ok := a.(Challenger); ok && ch.Challenge(w, r) {
				return
			}
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", WWWAuthenticate(err))
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next(w, r, id)
	})
}

// hello is the protected application: it names the caller, the page and the
// cookies it received (the session cookies must not reach it).
func hello(w http.ResponseWriter, r *http.Request, id *Identity) {
	var names []string
	for _, c := range r.Cookies() {
		names = append(names, c.Name)
	}
	sort.Strings(names)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprintf(w, `<html><body><p id="who">hello %s at %s</p><p id="cookies">cookies:%s</p></body></html>`,
		id.Subject, r.URL.RequestURI(), strings.Join(names, ","))
}

type testApp struct {
	URL    string
	B      *Browser
	Client *http.Client
	Jar    http.CookieJar
}

// newTestApp serves hello behind a Browser on 127.0.0.1:0.
func newTestApp(t *testing.T, issuer, clientID, secret string, mod func(*BrowserConfig)) *testApp {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	app := &testApp{URL: "http://" + ln.Addr().String()}
	cfg := BrowserConfig{
		Issuer:        issuer,
		ClientID:      clientID,
		ClientSecret:  secret,
		SessionConfig: SessionConfig{AppURI: app.URL, InsecureCookies: true, CookieKeys: [][]byte{testCookieKey}},
	}
	if mod != nil {
		mod(&cfg)
	}
	app.B, err = NewBrowser(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/", protect(Chain{app.B}, hello))
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: app.B.Middleware(mux)}}
	srv.Start()
	t.Cleanup(srv.Close)
	app.Jar, _ = cookiejar.New(nil)
	app.Client = &http.Client{Jar: app.Jar}
	return app
}

func (a *testApp) get(t *testing.T, path string, html bool) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.URL+path, nil)
	if html {
		req.Header.Set("Accept", "text/html,application/xhtml+xml,*/*;q=0.8")
	}
	resp, err := a.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func body(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func noRedirects(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

func (a *testApp) cookies() []*http.Cookie {
	u, _ := url.Parse(a.URL)
	return a.Jar.Cookies(u)
}

func TestBrowserFlow(t *testing.T) {
	m := startMockOIDC(t)
	m.QueueUser(testop.User{Subject: "bob", Email: "bob@example.com"})
	cfg := m.Config
	app := newTestApp(t, m.Issuer(), cfg.ClientID, cfg.ClientSecret, func(c *BrowserConfig) { c.Now = m.Now })

	// An API client gets 401 with a Bearer challenge, no redirect.
	resp := app.get(t, "/private?x=1&y=%2F", false)
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != "Bearer" {
		t.Fatalf("API client: %s %q", resp.Status, resp.Header.Get("WWW-Authenticate"))
	}
	resp.Body.Close()

	// The first redirect carries state, nonce and an S256 PKCE challenge and sets
	// a login cookie scoped to the callback.
	resp, err := noRedirects(app.Client).Do(mustRequest(t, app.URL+"/private?x=1&y=%2F"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := resp.Location()
	q := loc.Query()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(loc.String(), m.AuthorizationEndpoint()) ||
		q.Get("state") == "" || q.Get("nonce") == "" || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" ||
		q.Get("redirect_uri") != app.URL+DefaultCallbackPath {
		t.Fatalf("login redirect: %s %s", resp.Status, loc.Redacted())
	}
	var login *http.Cookie
	for _, c := range resp.Cookies() {
		if strings.HasPrefix(c.Name, "regoguard_login_") {
			login = c
		}
	}
	if login == nil || !login.HttpOnly || login.SameSite != http.SameSiteLaxMode || login.Path != DefaultCallbackPath || login.MaxAge <= 0 {
		t.Fatalf("login cookie %+v", login)
	}

	// The whole flow lands on the page first asked for, with its query.
	resp = app.get(t, "/private?x=1&y=%2F", true)
	got := body(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(got, "hello bob at /private?x=1&y=%2F") {
		t.Fatalf("after login: %s %s", resp.Status, got)
	}
	if strings.Contains(got, "regoguard") {
		t.Fatalf("session cookie reached the application: %s", got)
	}
	var sess *http.Cookie
	for _, c := range app.cookies() {
		if c.Name == "regoguard" {
			sess = c
		}
	}
	if sess == nil {
		t.Fatal("no session cookie")
	}

	// Authenticate without the middleware reads the cookie directly.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(sess)
	id, err := app.B.Authenticate(r)
	if err != nil || id.Subject != "bob" || id.Method != MethodOIDC || id.Claims["email"] != "bob@example.com" || id.Token == "" {
		t.Fatalf("Authenticate: %v %v", id, err)
	}

	// Tampered: any flipped byte is refused.
	raw, _ := base64.RawURLEncoding.DecodeString(sess.Value)
	for _, i := range []int{0, 12, len(raw) / 2, len(raw) - 1} {
		bad := append([]byte(nil), raw...)
		bad[i] ^= 1
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: "regoguard", Value: base64.RawURLEncoding.EncodeToString(bad)})
		id, err := app.B.Authenticate(r)
		mustRefuse(t, id, err)
	}
	// Sealed for another cookie name (a login cookie replayed as session): refused.
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: "regoguard", Value: login.Value})
	id, err = app.B.Authenticate(r)
	mustRefuse(t, id, err)
	// Through the middleware a tampered cookie is dropped and the browser sent to log in.
	req := mustRequest(t, app.URL+"/private")
	req.Header.Set("Cookie", "regoguard="+base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]))
	resp, err = noRedirects(&http.Client{}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.Contains(resp.Header.Get("Location"), m.AuthorizationEndpoint()) ||
		!strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), "\n"), "regoguard=;") {
		t.Fatalf("tampered cookie via middleware: %s %v", resp.Status, resp.Header)
	}

	// A session from another deployment's key is refused; a rotated-in key still opens old cookies.
	other, _ := NewBrowser(BrowserConfig{
		Issuer:        m.Issuer(),
		ClientID:      cfg.ClientID,
		SessionConfig: SessionConfig{AppURI: app.URL, InsecureCookies: true, CookieKeys: [][]byte{[]byte("another-key-another-key-another-key!")}},
	})
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(sess)
	_, err = other.Authenticate(r)
	mustRefuse(t, nil, err)
	rotated, _ := NewBrowser(BrowserConfig{
		Issuer:        m.Issuer(),
		ClientID:      cfg.ClientID,
		SessionConfig: SessionConfig{AppURI: app.URL, InsecureCookies: true, Now: m.Now, CookieKeys: [][]byte{[]byte("the-new-key-the-new-key-the-new-key!"), testCookieKey}},
	})
	if id, err := rotated.Authenticate(r); err != nil || id.Subject != "bob" {
		t.Fatalf("rotated keys: %v %v", id, err)
	}

	// Refresh: once the ID token expired the middleware refreshes it.
	m.FastForward(cfg.AccessTTL + time.Minute)
	if _, err := app.B.Authenticate(r); err == nil {
		t.Fatal("expired ID token accepted without refresh")
	}
	resp = app.get(t, "/after-expiry", true)
	got = body(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(got, "hello bob at /after-expiry") {
		t.Fatalf("after refresh: %s %s", resp.Status, got)
	}
	var refreshed *http.Cookie
	for _, c := range app.cookies() {
		if c.Name == "regoguard" {
			refreshed = c
		}
	}
	if refreshed == nil || refreshed.Value == sess.Value {
		t.Fatal("refresh did not reissue the session cookie")
	}

	// Logout: GET only asks; cross-origin POST is refused; same-origin POST clears.
	resp = app.get(t, DefaultLogoutPath, true)
	got = body(t, resp)
	if resp.StatusCode != 200 || !strings.Contains(got, `method="post"`) {
		t.Fatalf("logout GET: %s %s", resp.Status, got)
	}
	if resp := app.get(t, "/still-in", true); !strings.Contains(body(t, resp), "hello bob") {
		t.Fatal("GET logout logged out")
	}
	post := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, app.URL+DefaultLogoutPath, nil)
		req.Header.Set("Origin", origin)
		resp, err := noRedirects(app.Client).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post("http://evil.example"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-origin logout: %s", resp.Status)
	}
	if resp := app.get(t, "/still-in", true); !strings.Contains(body(t, resp), "hello bob") {
		t.Fatal("cross-origin POST logged out")
	}
	before := refreshed
	resp = post(app.URL)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("logout: %s %s", resp.Status, resp.Header.Get("Location"))
	}
	for _, c := range app.cookies() {
		if c.Name == "regoguard" {
			t.Fatal("session cookie survived logout")
		}
	}
	// Replay: the cookie copied before logout is refused (revoked session ID).
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(before)
	id, err = app.B.Authenticate(r)
	mustRefuse(t, id, err)
	if !strings.Contains(err.Error(), "logged out") {
		t.Fatalf("replay refused for the wrong reason: %v", err)
	}

	// Beyond SessionLifetime the session is over, refresh or not.
	m.FastForward(13 * time.Hour)
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(refreshed)
	_, err = rotated.Authenticate(r)
	mustRefuse(t, nil, err)
}

func mustRequest(t *testing.T, u string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "text/html")
	return req
}

// startAttempt begins a login and returns the provider URL and login cookie.
func startAttempt(t *testing.T, app *testApp, path string) (*url.URL, *http.Cookie) {
	t.Helper()
	resp, err := noRedirects(&http.Client{}).Do(mustRequest(t, app.URL+path))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("%s: %s", path, resp.Status)
	}
	for _, c := range resp.Cookies() {
		if strings.Contains(c.Name, "_login_") {
			return loc, c
		}
	}
	t.Fatal("no login cookie")
	return nil, nil
}

// authorize follows a provider URL (the test provider approves at once) and returns the callback URL.
func authorize(t *testing.T, u string) string {
	t.Helper()
	resp, err := noRedirects(&http.Client{}).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("authorize: %s", resp.Status)
	}
	return loc.String()
}

func callback(t *testing.T, cbURL string, cookies ...*http.Cookie) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, cbURL, nil)
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := noRedirects(&http.Client{}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body(t, resp)
}

func TestBrowserCallbackRefusals(t *testing.T) {
	m := startMockOIDC(t)
	cfg := m.Config
	app := newTestApp(t, m.Issuer(), cfg.ClientID, cfg.ClientSecret, nil)

	isSession := func(resp *http.Response) bool {
		for _, c := range resp.Cookies() {
			if c.Name == "regoguard" && c.Value != "" {
				return true
			}
		}
		return false
	}

	t.Run("success and replay", func(t *testing.T) {
		loc, lc := startAttempt(t, app, "/a?b=c")
		cb := authorize(t, loc.String())
		resp, _ := callback(t, cb, lc)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/a?b=c" || !isSession(resp) {
			t.Fatalf("callback: %s %s", resp.Status, resp.Header.Get("Location"))
		}
		// The same callback with the same login cookie: the provider refuses
		// the used code (TestBrowserLoginRecordedAfterExchange covers a
		// provider that does not).
		resp, page := callback(t, cb, lc)
		if resp.StatusCode != http.StatusBadGateway || isSession(resp) || !strings.Contains(page, "did not confirm") {
			t.Fatalf("replayed callback: %s %s", resp.Status, page)
		}
	})
	t.Run("no login cookie", func(t *testing.T) {
		loc, _ := startAttempt(t, app, "/")
		resp, page := callback(t, authorize(t, loc.String()))
		if resp.StatusCode != http.StatusBadRequest || isSession(resp) || !strings.Contains(page, "Try again") {
			t.Fatalf("%s %s", resp.Status, page)
		}
	})
	t.Run("state mismatch", func(t *testing.T) {
		locA, lcA := startAttempt(t, app, "/")
		_, lcB := startAttempt(t, app, "/")
		cbA := authorize(t, locA.String())
		// Attempt B's cookie renamed to A's name: refused, as the name is
		// bound into the AEAD (and the state sealed inside is B's).
		resp, _ := callback(t, cbA, &http.Cookie{Name: lcA.Name, Value: lcB.Value})
		if resp.StatusCode != http.StatusBadRequest || isSession(resp) {
			t.Fatalf("swapped cookie: %s", resp.Status)
		}
		// A forged state.
		u, _ := url.Parse(cbA)
		q := u.Query()
		q.Set("state", "forged")
		u.RawQuery = q.Encode()
		resp, _ = callback(t, u.String(), lcA)
		if resp.StatusCode != http.StatusBadRequest || isSession(resp) {
			t.Fatalf("forged state: %s", resp.Status)
		}
	})
	t.Run("nonce mismatch", func(t *testing.T) {
		// Same state and PKCE verifier as the login cookie, but the provider is
		// asked for another nonce: PKCE passes, the nonce check must refuse.
		loc, lc := startAttempt(t, app, "/")
		pt, err := app.B.login.Open(lc.Name, lc.Value)
		if err != nil {
			t.Fatal(err)
		}
		var ls loginState
		json.Unmarshal(pt, &ls)
		q := loc.Query()
		if q.Get("nonce") != ls.Nonce {
			t.Fatal("nonce in the URL is not the cookie's")
		}
		q.Set("nonce", "nonce-from-another-attempt")
		loc.RawQuery = q.Encode()
		resp, page := callback(t, authorize(t, loc.String()), lc)
		if resp.StatusCode != http.StatusBadRequest || isSession(resp) || !strings.Contains(page, "does not match") {
			t.Fatalf("nonce: %s %s", resp.Status, page)
		}
	})
	t.Run("reused nonce", func(t *testing.T) {
		// Attempt A completes; attempt B then gets an ID token carrying A's
		// (already used) nonce. B's state and PKCE are right: only the nonce
		// is stale.
		locA, lcA := startAttempt(t, app, "/")
		if resp, _ := callback(t, authorize(t, locA.String()), lcA); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("attempt A: %s", resp.Status)
		}
		locB, lcB := startAttempt(t, app, "/")
		q := locB.Query()
		q.Set("nonce", locA.Query().Get("nonce"))
		locB.RawQuery = q.Encode()
		resp, page := callback(t, authorize(t, locB.String()), lcB)
		if resp.StatusCode != http.StatusBadRequest || isSession(resp) || !strings.Contains(page, "does not match") {
			t.Fatalf("reused nonce: %s %s", resp.Status, page)
		}
	})
	t.Run("wrong PKCE verifier", func(t *testing.T) {
		loc, lc := startAttempt(t, app, "/")
		q := loc.Query()
		sum := sha256.Sum256([]byte("another-verifier-another-verifier-another-verifier"))
		q.Set("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:]))
		loc.RawQuery = q.Encode()
		resp, page := callback(t, authorize(t, loc.String()), lc)
		if resp.StatusCode != http.StatusBadGateway || isSession(resp) || strings.Contains(page, "panic") {
			t.Fatalf("pkce: %s %s", resp.Status, page)
		}
	})
	t.Run("provider error", func(t *testing.T) {
		loc, lc := startAttempt(t, app, "/")
		resp, page := callback(t, app.URL+DefaultCallbackPath+"?error=access_denied<script>&state="+url.QueryEscape(loc.Query().Get("state")), lc)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "access_deniedscript") || strings.Contains(page, "<script>") {
			t.Fatalf("%s %s", resp.Status, page)
		}
	})
	t.Run("expired login", func(t *testing.T) {
		clock := time.Now()
		app2 := newTestApp(t, m.Issuer(), cfg.ClientID, cfg.ClientSecret, func(c *BrowserConfig) { c.Now = func() time.Time { return clock } })
		loc, lc := startAttempt(t, app2, "/")
		clock = clock.Add(11 * time.Minute)
		resp, page := callback(t, authorize(t, loc.String()), lc)
		if resp.StatusCode != http.StatusBadRequest || isSession(resp) || !strings.Contains(page, "expired") {
			t.Fatalf("%s %s", resp.Status, page)
		}
	})
}

func TestBrowserReturnPaths(t *testing.T) {
	m := startMockOIDC(t)
	cfg := m.Config
	app := newTestApp(t, m.Issuer(), cfg.ClientID, cfg.ClientSecret, nil)
	for _, rd := range []string{"https://evil.example", "//evil.example", "/\\evil.example", "\\\\evil.example",
		"/\t/evil.example", "javascript:alert(1)", "evil.example", "http:/evil.example", "///evil.example", "/ok\r\nSet-Cookie:x=y"} {
		resp, err := noRedirects(&http.Client{}).Do(mustRequest(t, app.URL+DefaultLoginPath+"?rd="+url.QueryEscape(rd)))
		if err != nil {
			t.Fatal(err)
		}
		page := body(t, resp)
		if resp.StatusCode != http.StatusBadRequest || strings.Contains(resp.Header.Get("Location"), "evil") {
			t.Errorf("rd=%q: %s %s", rd, resp.Status, page)
		}
	}
	for _, s := range []string{"/ok", "/ok?a=b&c=%2F", "/a/b/c#frag", "/%2F%2Fevil.example", "/%0a/x"} {
		if _, ok := websession.SafeReturnPath(s); !ok {
			t.Errorf("%q refused", s)
		}
	}
	// A valid rd lands there after login.
	m.QueueUser(testop.User{Subject: "carol"})
	resp := app.get(t, DefaultLoginPath+"?rd="+url.QueryEscape("/landing?a=b"), true)
	if got := body(t, resp); !strings.Contains(got, "hello carol at /landing?a=b") {
		t.Fatalf("%s", got)
	}
}

func TestBrowserProviderDown(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := "http://" + ln.Addr().String()
	ln.Close()
	app := newTestApp(t, dead, "client", "secret", nil)
	resp := app.get(t, "/private", true)
	page := body(t, resp)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "unavailable") || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("%s %s", resp.Status, page)
	}
	resp = app.get(t, DefaultCallbackPath+"?state=x&code=y", true)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("callback: %s", resp.Status)
	}
	resp.Body.Close()
}

func TestBrowserLargeSession(t *testing.T) {
	m := startMockOIDC(t)
	cfg := m.Config
	var groups []string
	for i := range 100 {
		groups = append(groups, fmt.Sprintf("group-with-a-fairly-long-name-%04d", i))
	}
	app := newTestApp(t, m.Issuer(), cfg.ClientID, cfg.ClientSecret, func(c *BrowserConfig) { c.Scopes = []string{"groups"} })
	m.QueueUser(testop.User{Subject: "dave", Groups: groups})
	resp := app.get(t, "/big", true)
	if got := body(t, resp); resp.StatusCode != 200 || !strings.Contains(got, "hello dave at /big") {
		t.Fatalf("large session: %s %s", resp.Status, got)
	}
	n := 0
	for _, c := range app.cookies() {
		if c.Name == "regoguard" || strings.HasPrefix(c.Name, "regoguard.") {
			n++
		}
	}
	if n < 2 {
		t.Fatalf("session not split: %d cookies", n)
	}
	// Authenticate sees every group.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range app.cookies() {
		r.AddCookie(c)
	}
	id, err := app.B.Authenticate(r)
	if err != nil || len(id.Claims["groups"].([]any)) != 100 {
		t.Fatalf("%v %v", id, err)
	}

	// Too large even for MaxCookies: a clear error, not a broken session.
	small := newTestApp(t, m.Issuer(), cfg.ClientID, cfg.ClientSecret, func(c *BrowserConfig) { c.Scopes = []string{"groups"}; c.MaxCookies = 1 })
	m.QueueUser(testop.User{Subject: "dave", Groups: groups})
	resp = small.get(t, "/big", true)
	if got := body(t, resp); resp.StatusCode != http.StatusInternalServerError || !strings.Contains(got, "too large") {
		t.Fatalf("oversized session: %s %s", resp.Status, got)
	}
}

func TestBrowserConfigChecks(t *testing.T) {
	base := BrowserConfig{Issuer: "https://op.example", ClientID: "c", SessionConfig: SessionConfig{AppURI: "https://app.example", CookieKeys: [][]byte{testCookieKey}}}
	bad := map[string]func(*BrowserConfig){
		"http non-local":         func(c *BrowserConfig) { c.AppURI = "http://app.example"; c.InsecureCookies = true },
		"insecure https":         func(c *BrowserConfig) { c.InsecureCookies = true },
		"http localhost, secure": func(c *BrowserConfig) { c.AppURI = "http://localhost:8080" },
		"short key":              func(c *BrowserConfig) { c.CookieKeys = [][]byte{[]byte("short")} },
		"no key":                 func(c *BrowserConfig) { c.CookieKeys = nil },
		"relative app":           func(c *BrowserConfig) { c.AppURI = "/app" },
		"HS256":                  func(c *BrowserConfig) { c.Algorithms = []string{"HS256"} },
		"route":                  func(c *BrowserConfig) { c.CallbackPath = "//evil/cb" },
		"one route twice":        func(c *BrowserConfig) { c.LogoutPath = DefaultLoginPath },
	}
	for name, mod := range bad {
		c := base
		mod(&c)
		if _, err := NewBrowser(c); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	b, err := NewBrowser(base)
	if err != nil {
		t.Fatal(err)
	}
	if b.cfg.CookieName != "__Host-regoguard" || !b.secure || !strings.HasPrefix(websession.LoginCookieName("regoguard_login_", b.secure, "x"), "__Secure-") {
		t.Fatalf("secure defaults: %q %v", b.cfg.CookieName, b.secure)
	}
	for _, c := range []struct {
		method, accept string
		want           bool
	}{
		{"GET", "text/html,application/xhtml+xml,*/*;q=0.8", true},
		{"HEAD", "text/html", true},
		{"GET", "*/*", false},
		{"GET", "application/json", false},
		{"GET", "text/html;q=0", false},
		{"POST", "text/html", false},
	} {
		r := httptest.NewRequest(c.method, "/", nil)
		r.Header.Set("Accept", c.accept)
		if got := websession.WantsHTML(r); got != c.want {
			t.Errorf("%s %q: %v", c.method, c.accept, got)
		}
	}
	_ = context.Background
}

// startCountingMockOIDC starts the test provider and counts refresh grants.
func startCountingMockOIDC(t *testing.T) (*testop.OP, *atomic.Int32) {
	t.Helper()
	return startMockOIDCCounting(t, func(r *http.Request) bool {
		if !strings.HasSuffix(r.URL.Path, "/token") {
			return false
		}
		_ = r.ParseForm()
		return r.PostForm.Get("grant_type") == "refresh_token"
	})
}

// startMockOIDCCounting starts the test provider on 127.0.0.1:0 and counts
// the requests that match.
func startMockOIDCCounting(t *testing.T, match func(*http.Request) bool) (*testop.OP, *atomic.Int32) {
	t.Helper()
	m := testop.Start(t)
	return m, m.Count(match)
}

func TestBrowserRefresh(t *testing.T) {
	m, refreshes := startCountingMockOIDC(t)
	cfg := m.Config
	app := newTestApp(t, m.Issuer(), cfg.ClientID, cfg.ClientSecret, func(c *BrowserConfig) { c.Now = m.Now })
	if got := body(t, app.get(t, "/in", true)); !strings.Contains(got, "hello") {
		t.Fatal(got)
	}
	cookies := app.cookies()

	// Concurrent requests carrying the same expired session share one refresh.
	m.FastForward(cfg.AccessTTL + time.Minute)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := mustRequest(t, app.URL+"/concurrent")
			for _, c := range cookies {
				req.AddCookie(c)
			}
			resp, err := noRedirects(&http.Client{}).Do(req)
			if err != nil {
				errs <- err
				return
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !strings.Contains(string(b), "hello") || !strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), ";"), "regoguard=") {
				errs <- fmt.Errorf("%s %s", resp.Status, b)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := refreshes.Load(); n != 1 {
		t.Fatalf("%d refresh grants for one session, want 1", n)
	}

	// Once the refresh token expired too, the session ends: the cookie is
	// dropped and the browser is sent to log in.
	m.FastForward(cfg.RefreshTTL + time.Minute)
	req := mustRequest(t, app.URL+"/later")
	for _, c := range app.cookies() {
		req.AddCookie(c)
	}
	resp, err := noRedirects(&http.Client{}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(resp.Header.Get("Location"), m.AuthorizationEndpoint()) ||
		!strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), "\n"), "regoguard=;") {
		t.Fatalf("expired refresh token: %s %v", resp.Status, resp.Header)
	}
	if n := refreshes.Load(); n != 2 {
		t.Fatalf("%d refresh grants, want 2", n)
	}
}

func TestBrowserSessionTrimmed(t *testing.T) {
	m := startMockOIDC(t)
	cfg := m.Config
	var groups []string
	for i := range 100 {
		groups = append(groups, fmt.Sprintf("group-with-a-fairly-long-name-%04d", i))
	}
	// Two cookies hold the claims but not the claims and the raw ID token.
	app := newTestApp(t, m.Issuer(), cfg.ClientID, cfg.ClientSecret, func(c *BrowserConfig) { c.Scopes = []string{"groups"}; c.MaxCookies = 2 })
	m.QueueUser(testop.User{Subject: "erin", Groups: groups})
	resp := app.get(t, "/trim", true)
	if got := body(t, resp); resp.StatusCode != 200 || !strings.Contains(got, "hello erin at /trim") {
		t.Fatalf("trimmed session: %s %s", resp.Status, got)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range app.cookies() {
		r.AddCookie(c)
	}
	id, err := app.B.Authenticate(r)
	if err != nil || id.Token != "" || len(id.Claims["groups"].([]any)) != 100 {
		t.Fatalf("trimmed: token kept=%v err=%v", id != nil && id.Token != "", err)
	}
}

// Session fixation: a victim whose browser already holds a session cookie
// that an attacker planted (the attacker's own, valid one) and who then logs
// in gets a new session of their own; the planted value is not kept.
func TestBrowserLoginReplacesAPlantedSession(t *testing.T) {
	m := startMockOIDC(t)
	m.QueueUser(testop.User{Subject: "mallory", Email: "mallory@example.com"})
	m.QueueUser(testop.User{Subject: "bob", Email: "bob@example.com"})
	cfg := m.Config
	app := newTestApp(t, m.Issuer(), cfg.ClientID, cfg.ClientSecret, func(c *BrowserConfig) { c.Now = m.Now })

	// The attacker logs in and takes their session cookie.
	if got := body(t, app.get(t, "/private", true)); !strings.Contains(got, "hello mallory") {
		t.Fatalf("attacker's login: %s", got)
	}
	var planted *http.Cookie
	for _, c := range app.cookies() {
		if c.Name == "regoguard" {
			planted = c
		}
	}
	if planted == nil {
		t.Fatal("no session cookie for the attacker")
	}

	// The victim's browser holds the planted cookie and logs in afresh.
	victim := newJar(t)
	u, _ := url.Parse(app.URL)
	victim.SetCookies(u, []*http.Cookie{{Name: planted.Name, Value: planted.Value, Path: "/"}})
	client := &http.Client{Jar: victim}
	resp, err := client.Get(app.URL + DefaultLoginPath + "?rd=/private")
	if err != nil {
		t.Fatal(err)
	}
	got := body(t, resp)
	var after *http.Cookie
	for _, c := range victim.Cookies(u) {
		if c.Name == "regoguard" {
			after = c
		}
	}
	if !strings.Contains(got, "hello bob") || after == nil || after.Value == planted.Value {
		t.Fatalf("after the victim's login: page %q, session cookie kept as planted: %v", got, after != nil && after.Value == planted.Value)
	}
}

func newJar(t *testing.T) http.CookieJar {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return jar
}
