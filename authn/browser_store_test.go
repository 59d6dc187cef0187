package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regoguard/regoguard/authn/internal/testop"
)

// countingStore records what reached the real in-memory store: it is the
// store the Browser uses, seen through a counter, not a fake.
type countingStore struct {
	SessionStore
	logins, revocations atomic.Int32
}

func (c *countingStore) UseLogin(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	ok, err := c.SessionStore.UseLogin(ctx, id, ttl)
	if ok && err == nil {
		c.logins.Add(1)
	}
	return ok, err
}

func (c *countingStore) Revoke(ctx context.Context, id string, ttl time.Duration) error {
	err := c.SessionStore.Revoke(ctx, id, ttl)
	if err == nil {
		c.revocations.Add(1)
	}
	return err
}

// login runs the whole flow for a fresh browser and returns its cookies.
func (a *testApp) freshLogin(t *testing.T, path string) (*http.Client, http.CookieJar, string) {
	t.Helper()
	jar := newJar(t)
	c := &http.Client{Jar: jar}
	req := mustRequest(t, a.URL+path)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return c, jar, body(t, resp)
}

func sessionCookie(t *testing.T, jar http.CookieJar, appURL string) *http.Cookie {
	t.Helper()
	u, _ := url.Parse(appURL)
	for _, c := range jar.Cookies(u) {
		if c.Name == "regoguard" {
			return c
		}
	}
	return nil
}

func (a *testApp) logout(t *testing.T, c *http.Client) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, a.URL+DefaultLogoutPath, nil)
	req.Header.Set("Origin", a.URL)
	resp, err := noRedirects(c).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, body(t, resp)
}

// Issue #14, weakness 3: callbacks without a valid code used to be recorded
// before the code was looked at, so a flood of login/callback pairs filled
// the bookkeeping and every genuine login then failed ("already used").
func TestBrowserLoginRecordedAfterExchange(t *testing.T) {
	m := testop.Start(t)
	store := &countingStore{SessionStore: NewMemorySessionStore(MemorySessionStoreConfig{MaxLogins: 5, MaxRevocations: 5})}
	app := newTestApp(t, m.Issuer(), m.ClientID, m.ClientSecret, func(c *BrowserConfig) { c.Store = store })

	for i := range 50 {
		loc, lc := startAttempt(t, app, "/")
		state := url.QueryEscape(loc.Query().Get("state"))
		for _, q := range []string{"state=" + state, "state=" + state + "&code=garbage-" + fmt.Sprint(i)} {
			resp, _ := callback(t, app.URL+DefaultCallbackPath+"?"+q, lc)
			if resp.StatusCode < 400 {
				t.Fatalf("callback %q: %s", q, resp.Status)
			}
		}
	}
	if n := store.logins.Load(); n != 0 {
		t.Fatalf("%d logins recorded by callbacks without a valid code, want 0", n)
	}
	// A genuine login still works, and is recorded once.
	if _, _, got := app.freshLogin(t, "/after-flood"); !strings.Contains(got, "hello 1234567890 at /after-flood") {
		t.Fatalf("genuine login after the flood: %s", got)
	}
	if n := store.logins.Load(); n != 1 {
		t.Fatalf("%d logins recorded, want 1", n)
	}

	// A provider that accepts a code twice: the relying party's own record
	// refuses the replayed callback.
	m.ReuseCodes(true)
	loc, lc := startAttempt(t, app, "/r")
	cb := authorize(t, loc.String())
	if resp, _ := callback(t, cb, lc); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("first callback: %s", resp.Status)
	}
	resp, page := callback(t, cb, lc)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "already used") || strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), ";"), "regoguard=") {
		t.Fatalf("replayed callback with a reusable code: %s %s", resp.Status, page)
	}
}

// Issue #14, weakness 3: a logout that cannot revoke the session said 303
// as if it had; revocations and logins shared one bound.
func TestBrowserLogoutThatCannotRevokeSaysSo(t *testing.T) {
	m := testop.Start(t)
	store := NewMemorySessionStore(MemorySessionStoreConfig{MaxLogins: 3, MaxRevocations: 1})
	app := newTestApp(t, m.Issuer(), m.ClientID, m.ClientSecret, func(c *BrowserConfig) { c.Store = store })

	// Alice logs out: the one revocation slot.
	alice, aliceJar, _ := app.freshLogin(t, "/")
	aliceCopy := sessionCookie(t, aliceJar, app.URL)
	if resp, _ := app.logout(t, alice); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("alice's logout: %s", resp.Status)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(aliceCopy)
	if _, err := app.B.Authenticate(r); err == nil {
		t.Fatal("alice's copied cookie accepted after logout")
	}

	// Bob cannot be revoked (the store is full): he is told, keeps his
	// cookie to try again, and his session is not silently left valid
	// behind a 303.
	bob, bobJar, _ := app.freshLogin(t, "/")
	resp, page := app.logout(t, bob)
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "could not be ended") {
		t.Fatalf("logout that cannot revoke: %s %s", resp.Status, page)
	}
	if strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), ";"), "regoguard=;") || sessionCookie(t, bobJar, app.URL) == nil {
		t.Fatal("failed logout cleared the cookie: the user could not retry")
	}

	// Revocations full does not starve logins: carol still logs in.
	if _, _, got := app.freshLogin(t, "/carol"); !strings.Contains(got, "hello") {
		t.Fatalf("login with revocations full: %s", got)
	}
	// Logins full (alice, bob, carol): the next login is refused with 503
	// and says why, never "already used" (TestMemorySessionStoreBounds shows
	// that revocations are still recorded meanwhile).
	if _, _, got := app.freshLogin(t, "/dave"); !strings.Contains(got, "could not be recorded") {
		t.Fatalf("login with logins full: %s", got)
	}
}

// The bounds are separate: filling one kind leaves the other untouched.
func TestMemorySessionStoreBounds(t *testing.T) {
	ctx := context.Background()
	clock := time.Unix(1_000_000, 0)
	s := NewMemorySessionStore(MemorySessionStoreConfig{MaxLogins: 2, MaxRevocations: 2, Now: func() time.Time { return clock }})
	for i := range 2 {
		if ok, err := s.UseLogin(ctx, fmt.Sprint("l", i), time.Minute); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if _, err := s.UseLogin(ctx, "l2", time.Minute); err != ErrSessionStoreFull {
		t.Fatalf("third login: %v", err)
	}
	if ok, err := s.UseLogin(ctx, "l0", time.Minute); ok || err != nil {
		t.Fatalf("replayed login: %v %v", ok, err)
	}
	for i := range 2 {
		if err := s.Revoke(ctx, fmt.Sprint("s", i), time.Hour); err != nil {
			t.Fatalf("revocation with logins full: %v", err)
		}
	}
	if err := s.Revoke(ctx, "s2", time.Hour); err != ErrSessionStoreFull {
		t.Fatalf("third revocation: %v", err)
	}
	if err := s.Revoke(ctx, "s0", 2*time.Hour); err != nil {
		t.Fatalf("revoking again: %v", err)
	}
	// Expired entries make room; revocations outlive logins.
	clock = clock.Add(2 * time.Minute)
	if ok, err := s.UseLogin(ctx, "l2", time.Minute); !ok || err != nil {
		t.Fatalf("login after expiry: %v %v", ok, err)
	}
	if r, _ := s.Revoked(ctx, "s1"); !r {
		t.Fatal("revocation forgotten early")
	}
	clock = clock.Add(time.Hour)
	if r, _ := s.Revoked(ctx, "s1"); r {
		t.Fatal("revocation kept beyond its ttl")
	}
	if r, _ := s.Revoked(ctx, "s0"); !r {
		t.Fatal("the later expiry of a repeated revocation was not kept")
	}
	if err := s.Revoke(ctx, "s2", time.Hour); err != nil {
		t.Fatalf("revocation after expiry: %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := s.Revoked(cctx, "s0"); err == nil {
		t.Fatal("a cancelled context answered")
	}
}

// downStore is a session store that cannot be reached. A fake, for a fault
// the in-memory store cannot produce (a Redis store that is down).
type downStore struct{}

var errStoreDown = fmt.Errorf("connection refused")

func (downStore) Revoke(context.Context, string, time.Duration) error { return errStoreDown }
func (downStore) Revoked(context.Context, string) (bool, error)       { return false, errStoreDown }
func (downStore) UseLogin(context.Context, string, time.Duration) (bool, error) {
	return false, errStoreDown
}

// When the store cannot answer, the browser flow fails closed without
// pretending: a session is neither accepted nor dropped (ErrUnavailable, the
// cookie kept), a login does not complete (503), a logout says it could not
// end the session (503).
func TestBrowserStoreDownFailsClosed(t *testing.T) {
	m := testop.Start(t)
	var store SessionStore = NewMemorySessionStore(MemorySessionStoreConfig{})
	app := newTestApp(t, m.Issuer(), m.ClientID, m.ClientSecret, func(c *BrowserConfig) {
		c.Store = storeFunc(func() SessionStore { return store })
	})
	client, jar, _ := app.freshLogin(t, "/")
	sess := sessionCookie(t, jar, app.URL)
	store = downStore{}

	var seen error
	h := app.B.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, seen = app.B.Authenticate(r)
	}))
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(sess)
	h.ServeHTTP(rec, r)
	if !errors.Is(seen, ErrUnavailable) || strings.Contains(strings.Join(rec.Result().Header.Values("Set-Cookie"), ";"), "regoguard=;") {
		t.Fatalf("session with the store down: %v, Set-Cookie %v", seen, rec.Result().Header.Values("Set-Cookie"))
	}
	if _, _, got := app.freshLogin(t, "/x"); !strings.Contains(got, "could not be recorded") {
		t.Fatalf("login with the store down: %s", got)
	}
	if resp, page := app.logout(t, client); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "could not be ended") {
		t.Fatalf("logout with the store down: %s %s", resp.Status, page)
	}
}

// storeFunc lets a test swap the store behind a running Browser.
type storeFunc func() SessionStore

func (f storeFunc) Revoke(ctx context.Context, id string, ttl time.Duration) error {
	return f().Revoke(ctx, id, ttl)
}
func (f storeFunc) Revoked(ctx context.Context, id string) (bool, error) { return f().Revoked(ctx, id) }
func (f storeFunc) UseLogin(ctx context.Context, id string, ttl time.Duration) (bool, error) {
	return f().UseLogin(ctx, id, ttl)
}
