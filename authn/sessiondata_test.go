package authn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/regoguard/regoguard/authn/internal/testop"
)

// mapSessionData is a SessionDataStore in a map, with a switch to make it
// fail. (The library has no server-side store of its own; the Redis one is
// tested against a real redis-server in authn/redisstore.)
type mapSessionData struct {
	mu   sync.Mutex
	m    map[string][]byte
	fail error
}

func (d *mapSessionData) SaveSession(_ context.Context, id string, data []byte, ttl time.Duration) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return d.fail
	}
	if ttl <= 0 {
		return errors.New("ttl must be positive")
	}
	d.m[id] = append([]byte(nil), data...)
	return nil
}

func (d *mapSessionData) LoadSession(_ context.Context, id string) ([]byte, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.fail != nil {
		return nil, d.fail
	}
	v, ok := d.m[id]
	if !ok {
		return nil, ErrSessionDataNotFound
	}
	return v, nil
}

func (d *mapSessionData) DeleteSession(_ context.Context, id string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.m, id)
	return nil
}

func (d *mapSessionData) set(f func(m map[string][]byte), fail error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if f != nil {
		f(d.m)
	}
	d.fail = fail
}

// A session far too large for one cookie is kept on the server: one small
// cookie, every claim and the ID token still there, nothing readable in the
// store, data moved between ids refused, a store that cannot answer a 503
// (cookie kept), logout forgets the session.
func TestBrowserServerSideSessions(t *testing.T) {
	m := startMockOIDC(t)
	cfg := m.Config
	var groups []string
	for i := range 100 {
		groups = append(groups, fmt.Sprintf("group-with-a-fairly-long-name-%04d", i))
	}
	data := &mapSessionData{m: map[string][]byte{}}
	app := newTestApp(t, m.Issuer(), cfg.ClientID, cfg.ClientSecret, func(c *BrowserConfig) {
		c.Scopes = []string{"groups"}
		c.MaxCookies = 1
		c.SessionData = data
	})
	m.QueueUser(testop.User{Subject: "dave", Groups: groups})
	resp := app.get(t, "/big", true)
	if got := body(t, resp); resp.StatusCode != 200 || !strings.Contains(got, "hello dave at /big") {
		t.Fatalf("server-side session: %s %s", resp.Status, got)
	}
	var sessionCookies []*http.Cookie
	for _, c := range app.cookies() {
		if c.Name == "regoguard" || strings.HasPrefix(c.Name, "regoguard.") {
			sessionCookies = append(sessionCookies, c)
		}
	}
	if len(sessionCookies) != 1 || len(sessionCookies[0].Value) > 200 {
		t.Fatalf("want one small cookie holding a reference, got %d cookies, first %d bytes", len(sessionCookies), len(sessionCookies[0].Value))
	}
	authenticate := func(cookies []*http.Cookie) (*Identity, error) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		for _, c := range cookies {
			r.AddCookie(c)
		}
		return app.B.Authenticate(r)
	}
	id, err := authenticate(sessionCookies)
	if err != nil || len(id.Claims["groups"].([]any)) != 100 || id.Token == "" {
		t.Fatalf("identity from the server-side session: %v %v", id, err)
	}
	// The store holds only sealed data. (Not a search for "eyJ": the sealed
	// data is base64url too, and holds those three characters by chance in
	// a few runs in a hundred.)
	data.set(func(m map[string][]byte) {
		if len(m) != 1 {
			t.Errorf("store holds %d sessions, want 1", len(m))
		}
		for _, v := range m {
			if s := string(v); strings.Contains(s, "dave") || strings.Contains(s, "group-with") || strings.Contains(s, id.Token[:24]) {
				t.Errorf("the store holds readable session data: %.80s", s)
			}
		}
	}, nil)

	// A second user; then whoever can write the store moves the second
	// user's data under the first user's id: it does not open.
	jar2, _ := cookiejar.New(nil)
	app2 := &testApp{URL: app.URL, B: app.B, Client: &http.Client{Jar: jar2}, Jar: jar2}
	m.QueueUser(testop.User{Subject: "mallory"})
	if got := body(t, app2.get(t, "/x", true)); !strings.Contains(got, "hello mallory") {
		t.Fatalf("second login: %s", got)
	}
	data.set(func(m map[string][]byte) {
		var daveID, malloryData string
		for k, v := range m {
			if len(v) > 2000 {
				daveID = k
			} else {
				malloryData = string(v)
			}
		}
		m[daveID] = []byte(malloryData)
	}, nil)
	if id, err := authenticate(sessionCookies); err == nil {
		t.Fatalf("data moved to another id opened as %s", id.Subject)
	}

	// A store that cannot answer: 503, the cookie kept; at login: 503.
	m.QueueUser(testop.User{Subject: "erin"})
	jar3, _ := cookiejar.New(nil)
	app3 := &testApp{URL: app.URL, B: app.B, Client: &http.Client{Jar: jar3}, Jar: jar3}
	if got := body(t, app3.get(t, "/y", true)); !strings.Contains(got, "hello erin") {
		t.Fatalf("third login: %s", got)
	}
	data.set(nil, errors.New("store down"))
	// (protect answers 401 to every error; authz answers 503 to
	// ErrUnavailable.)
	if id, err := authenticate(app3.cookies()); !errors.Is(err, ErrUnavailable) {
		t.Errorf("store down: %v %v, want an error wrapping ErrUnavailable (503)", id, err)
	}
	body(t, app3.get(t, "/y", true))
	if len(app3.cookies()) == 0 {
		t.Error("store down: the session cookie was dropped")
	}
	m.QueueUser(testop.User{Subject: "frank"})
	jar4, _ := cookiejar.New(nil)
	app4 := &testApp{URL: app.URL, B: app.B, Client: &http.Client{Jar: jar4}, Jar: jar4}
	resp = app4.get(t, "/z", true)
	if got := body(t, resp); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(got, "could not be stored") {
		t.Errorf("login with the store down: %s %s, want 503", resp.Status, got)
	}
	data.set(nil, nil)
	if got := body(t, app3.get(t, "/y", true)); !strings.Contains(got, "hello erin") {
		t.Errorf("store back: %s", got)
	}

	// Logout forgets the session data.
	req, _ := http.NewRequest(http.MethodPost, app.URL+DefaultLogoutPath, nil)
	req.Header.Set("Origin", app.URL)
	resp, err = noRedirects(app3.Client).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout: %s", resp.Status)
	}
	data.set(func(m map[string][]byte) {
		if len(m) != 2 {
			t.Errorf("after erin's logout the store holds %d sessions, want 2 (dave's, mallory's)", len(m))
		}
	}, nil)

	// A reference cookie reaching a Browser that keeps no server-side
	// sessions is refused, not trusted.
	plain := newTestApp(t, m.Issuer(), cfg.ClientID, cfg.ClientSecret, nil)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range app2.cookies() {
		r.AddCookie(c)
	}
	if id, err := plain.B.Authenticate(r); err == nil {
		t.Errorf("a reference cookie without a server-side store authenticated %s", id.Subject)
	}
}
