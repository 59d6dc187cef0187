package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/regoguard/regoguard/internal/testkit/testredis"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authn/internal/testop"
	"github.com/regoguard/regoguard/authn/redisstore"
)

// replica serves a page behind an authn.Browser on its own loopback port.
type replica struct {
	url string
	b   *authn.Browser
}

func startReplica(t *testing.T, op *testop.OP, appURL string, store *redisstore.Store) *replica {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if appURL == "" {
		appURL = "http://" + ln.Addr().String()
	}
	b, err := authn.NewBrowser(authn.BrowserConfig{
		Issuer:        op.Issuer(),
		ClientID:      op.Config.ClientID,
		ClientSecret:  op.Config.ClientSecret,
		Scopes:        []string{"groups"},
		SessionData:   store,
		SessionConfig: authn.SessionConfig{AppURI: appURL, InsecureCookies: true, CookieKeys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, MaxCookies: 1, Store: store},
	})
	if err != nil {
		t.Fatal(err)
	}
	page := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := b.Authenticate(r)
		switch {
		case errors.Is(err, authn.ErrNoCredential) && b.Challenge(w, r):
		case errors.Is(err, authn.ErrUnavailable):
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
		case err != nil:
			http.Error(w, "unauthorized", http.StatusUnauthorized)
		default:
			fmt.Fprintf(w, "hello %s with %d groups", id.Subject, len(id.Claims["groups"].([]any)))
		}
	})
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: b.Middleware(page)}}
	srv.Start()
	t.Cleanup(srv.Close)
	return &replica{url: "http://" + ln.Addr().String(), b: b}
}

// Two replicas share server-side sessions through one real Redis: a session
// too large for a cookie, made on A, works on B; Redis holds it sealed;
// Redis down is a 503 (cookie kept) and recovers; logout on B ends it on A
// and removes it from Redis.
func TestServerSideSessionsAcrossReplicas(t *testing.T) {
	srv := startRedis(t, testredis.Options{})
	store := newStore(t, srv.URL(), 500*time.Millisecond)
	op := testop.Start(t)
	a := startReplica(t, op, "", store)
	b := startReplica(t, op, a.url, store) // one public URL, as behind a load balancer
	var groups []string
	for i := range 100 {
		groups = append(groups, fmt.Sprintf("group-with-a-fairly-long-name-%04d", i))
	}
	op.QueueUser(testop.User{Subject: "dave", Groups: groups})
	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	get := func(base string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, base+"/page", nil)
		req.Header.Set("Accept", "text/html")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get(a.url); code != 200 || body != "hello dave with 100 groups" {
		t.Fatalf("login on A: %d %q", code, body)
	}
	// The jar holds cookies by host: B (same host, another port) gets them.
	au, _ := url.Parse(a.url)
	if cookies := jar.Cookies(au); len(cookies) != 1 || len(cookies[0].Value) > 200 {
		t.Fatalf("want one small reference cookie, got %v", cookies)
	}
	if code, body := get(b.url); code != 200 || body != "hello dave with 100 groups" {
		t.Fatalf("A's session on B: %d %q", code, body)
	}
	raw := rawClient(t, srv.Addr())
	ctx := context.Background()
	keys, _ := raw.Keys(ctx, "regoguard:session:*").Result()
	if len(keys) != 1 {
		t.Fatalf("Redis holds sessions %v, want one", keys)
	}
	// What a readable session would show: the subject as JSON, a group name,
	// a JWT's header ({"alg"…). None of them can turn up in sealed,
	// base64url-encoded data by chance (quotes are not in its alphabet; the
	// others are 8 characters or more).
	if v, _ := raw.Get(ctx, keys[0]).Result(); strings.Contains(v, `"dave"`) || strings.Contains(v, "group-with") || strings.Contains(v, "eyJhbGci") {
		t.Errorf("Redis holds readable session data: %.80s", v)
	}
	if ttl, _ := raw.PTTL(ctx, keys[0]).Result(); ttl <= 0 || ttl > 13*time.Hour {
		t.Errorf("session TTL %v, want the session's lifetime", ttl)
	}

	srv.Pause()
	start := time.Now()
	if code, _ := get(b.url); code != http.StatusServiceUnavailable {
		t.Errorf("Redis frozen: %d, want 503", code)
	}
	if took := time.Since(start); took > slack(500*time.Millisecond) {
		t.Errorf("Redis frozen: the request took %v", took)
	}
	srv.Resume()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if code, _ := get(a.url); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no recovery 5s after Redis resumed")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Logout on B.
	cookies := jar.Cookies(au)
	req, _ := http.NewRequest(http.MethodPost, b.url+authn.DefaultLogoutPath, nil)
	req.Header.Set("Origin", a.url)
	noRedirect := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("logout on B: %s", resp.Status)
	}
	if n, _ := raw.Exists(ctx, keys[0]).Result(); n != 0 {
		t.Error("the session is still in Redis after logout")
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, c := range cookies {
		r.AddCookie(c)
	}
	if id, err := a.b.Authenticate(r); err == nil {
		t.Errorf("the logged-out cookie replayed on A authenticated %s", id.Subject)
	}
}

func TestSessionDataSemantics(t *testing.T) {
	srv := startRedis(t, testredis.Options{})
	s := newStore(t, srv.URL(), 300*time.Millisecond)
	ctx := context.Background()
	if _, err := s.LoadSession(ctx, "oidc-session:none"); !errors.Is(err, authn.ErrSessionDataNotFound) {
		t.Fatalf("LoadSession of nothing: %v, want ErrSessionDataNotFound", err)
	}
	if err := s.SaveSession(ctx, "oidc-session:a", []byte("one"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSession(ctx, "oidc-session:a", []byte("two"), 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if v, err := s.LoadSession(ctx, "oidc-session:a"); err != nil || string(v) != "two" {
		t.Fatalf("LoadSession = %q, %v; want the last saved", v, err)
	}
	// Kept apart from revocations of the same id.
	if revoked, _ := s.Revoked(ctx, "oidc-session:a"); revoked {
		t.Error("saved session data reads as a revocation")
	}
	time.Sleep(250 * time.Millisecond)
	if _, err := s.LoadSession(ctx, "oidc-session:a"); !errors.Is(err, authn.ErrSessionDataNotFound) {
		t.Errorf("LoadSession after the ttl: %v, want ErrSessionDataNotFound", err)
	}
	if err := s.SaveSession(ctx, "oidc-session:b", []byte("x"), time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, "oidc-session:b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadSession(ctx, "oidc-session:b"); !errors.Is(err, authn.ErrSessionDataNotFound) {
		t.Errorf("LoadSession after DeleteSession: %v", err)
	}
	if err := s.SaveSession(ctx, "oidc-session:c", []byte("x"), 0); err == nil {
		t.Error("SaveSession with no ttl: no error")
	}

	// Redis gone: an error that is not "not found", in bounded time.
	srv.Stop()
	start := time.Now()
	if _, err := s.LoadSession(ctx, "oidc-session:c"); err == nil || errors.Is(err, authn.ErrSessionDataNotFound) {
		t.Errorf("LoadSession with Redis down: %v, want an error other than not found", err)
	}
	if err := s.SaveSession(ctx, "oidc-session:c", []byte("x"), time.Minute); err == nil {
		t.Error("SaveSession with Redis down: no error")
	}
	if took := time.Since(start); took > 2*slack(300*time.Millisecond) {
		t.Errorf("two calls with Redis down took %v", took)
	}
}
