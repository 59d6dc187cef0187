package e2e

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regoguard/regoguard/internal/testkit/testredis"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/regoguard/regoguard/internal/testkit/testbrowser"
	"github.com/regoguard/regoguard/internal/testkit/testoidc"
)

// Two `regoguard serve` replicas behind one public URL share their browser
// sessions' state in one real redis-server. A real Chromium logs in through
// a real OpenID Provider on replica A and logs out there: the same cookie,
// replayed, is refused on replica B. With Redis killed or frozen, no request
// carrying a session is let through, none waits longer than the store's
// bound, and API keys keep working; when Redis is back, the same browser
// session works again, and the logged-out one stays refused.
func TestServeReplicasShareSessionsInRedis(t *testing.T) { testReplicas(t, false) }

// The same with --server-side-sessions: the sessions themselves are in
// Redis, the cookie holds only a reference.
func TestServeReplicasServerSideSessions(t *testing.T) { testReplicas(t, true) }

func testReplicas(t *testing.T, serverSide bool) {
	ctx := testbrowser.New(t)
	// A Redis that keeps an append-only file, so that a restart finds the
	// revocations again, as a production Redis configured for it does.
	rdb := testredis.Start(t, testredis.Options{AppendOnly: true})
	addrA, addrB := freeAddr(t), freeAddr(t)
	appURL := "http://" + addrA // the public URL, as behind a load balancer
	op := testoidc.StartZitadel(t, appURL+"/oauth2/callback")

	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/favicon.ico" { // Chromium fetches it on its own, whenever
			hits.Add(1)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<p id="who">hello %s</p>`, html.EscapeString(r.Header.Get("X-Auth-Request-User")))
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("p.rego", "package httpapi.authz\ndefault allow := false\nallow if input.user.sub in {\"id1\", \"robot\"}\n")
	keys := write("keys.yaml", "keys:\n  - key: robot-key-0123456789\n    subject: robot\n")
	const storeTimeout = time.Second
	args := []string{"--upstream", up.URL, "--policy", filepath.Join(dir, "p.rego"), "--api-keys", keys,
		"--oidc-client-id", op.ClientID, "--app-uri", appURL, "--insecure-cookie",
		"--session-key", strings.Repeat("cd", 32),
		"--session-store", rdb.URL(), "--session-store-timeout", storeTimeout.String()}
	if serverSide {
		args = append(args, "--server-side-sessions")
	}
	env := []string{"OIDC_CLIENT_SECRET=" + op.ClientSecret, "OIDC_WELL_KNOWN=" + op.Issuer + "/.well-known/openid-configuration"}
	startServe(t, addrA, env, args...)
	startServe(t, addrB, env, args...)
	replicas := map[string]string{"A": "http://" + addrA, "B": "http://" + addrB}

	// A request that must come back, and within bound: a replica that
	// waits on a dead Redis much longer than its store timeout is a
	// failure. (The slack is for a loaded machine and -race binaries.)
	const bound = storeTimeout + 3*time.Second
	client := &http.Client{Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(base string, cookies []*http.Cookie, apiKey string) (int, string) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, base+"/private", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cookies {
			req.AddCookie(c)
		}
		if apiKey != "" {
			req.Header.Set("X-API-Key", apiKey)
		}
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v (after %v)", base, err, time.Since(start))
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if took := time.Since(start); took > bound {
			t.Errorf("GET %s took %v, more than %v: the replica waits on Redis", base, took, bound)
		}
		return resp.StatusCode, string(body)
	}
	// mustRefuse checks that a session is refused with want on both
	// replicas, and that nothing reached the upstream.
	mustRefuse := func(what string, cookies []*http.Cookie, want int) {
		t.Helper()
		before := hits.Load()
		for name, base := range replicas {
			if code, body := get(base, cookies, ""); code != want {
				t.Errorf("%s on replica %s: %d %q, want %d", what, name, code, body, want)
			}
		}
		if n := hits.Load() - before; n != 0 {
			t.Errorf("%s: %d requests reached the upstream", what, n)
		}
	}

	// recovers waits until both replicas accept a session again, by
	// themselves.
	recovers := func(what string, cookies []*http.Cookie) {
		t.Helper()
		for name, base := range replicas {
			deadline := time.Now().Add(10 * time.Second)
			for {
				code, body := get(base, cookies, "")
				if code == http.StatusOK && strings.Contains(body, "hello id1") {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s: replica %s still answers %d %q after 10s", what, name, code, body)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}

	// Log in on A; the session works on B too.
	login(ctx, t, op, appURL+"/private", testoidc.User)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("who"))); err != nil {
		t.Fatalf("protected page after login: %v", err)
	}
	loggedOut := browserCookies(ctx, t, appURL)
	if serverSide && (len(loggedOut) != 1 || len(loggedOut[0].Value) > 200) {
		t.Errorf("server-side sessions: the browser holds %d cookies, the first of %d bytes; want one small reference",
			len(loggedOut), len(loggedOut[0].Value))
	}
	if code, body := get(replicas["B"], loggedOut, ""); code != http.StatusOK || !strings.Contains(body, "hello id1") {
		t.Fatalf("session of A on B: %d %q, want 200 for id1", code, body)
	}

	// Log out on A; the same cookie is refused on A and on B.
	logout(ctx, t, op, appURL)
	mustRefuse("a logged-out session", loggedOut, http.StatusUnauthorized)

	// A new session, then Redis dies.
	login(ctx, t, op, appURL+"/private", testoidc.User)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("who"))); err != nil {
		t.Fatalf("protected page after the second login: %v", err)
	}
	live := browserCookies(ctx, t, appURL)

	// From here to the end, through every outage and recovery, the
	// logged-out cookie is replayed on both replicas without pause: it
	// must never get through, not even during a transition.
	stopReplay := make(chan struct{})
	var replayed, wronglyAllowed atomic.Int64
	var replayWG sync.WaitGroup
	replayWG.Go(func() {
		for {
			for _, base := range replicas {
				select {
				case <-stopReplay:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodGet, base+"/private", nil)
				for _, c := range loggedOut {
					req.AddCookie(c)
				}
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				resp.Body.Close()
				replayed.Add(1)
				if resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusServiceUnavailable {
					wronglyAllowed.Add(1)
				}
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
	defer func() {
		close(stopReplay)
		replayWG.Wait()
		t.Logf("logged-out cookie replayed %d times through the outages", replayed.Load())
		if n := wronglyAllowed.Load(); n != 0 || replayed.Load() == 0 {
			t.Errorf("logged-out cookie: %d of %d replays answered other than 401 or 503", n, replayed.Load())
		}
	}()

	rdb.Stop()

	// The browser sees 503, not the page and not a login loop.
	if resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(appURL+"/private")); err != nil || resp.Status != http.StatusServiceUnavailable {
		t.Errorf("browser with Redis down: %+v %v, want 503", resp, err)
	}
	// Many requests at once, on both replicas, with the live and the
	// logged-out session: all refused with 503, none hangs.
	before := hits.Load()
	var wg sync.WaitGroup
	for range 4 {
		for name, base := range replicas {
			for what, cookies := range map[string][]*http.Cookie{"live": live, "logged-out": loggedOut} {
				wg.Go(func() {
					if code, _ := get(base, cookies, ""); code != http.StatusServiceUnavailable {
						t.Errorf("%s session on %s with Redis down: %d, want 503", what, name, code)
					}
				})
			}
		}
	}
	wg.Wait()
	if n := hits.Load() - before; n != 0 {
		t.Errorf("with Redis down, %d requests with a session reached the upstream", n)
	}
	// API keys never wait on Redis.
	for name, base := range replicas {
		if code, body := get(base, nil, "robot-key-0123456789"); code != http.StatusOK || !strings.Contains(body, "hello robot") {
			t.Errorf("API key on %s with Redis down: %d %q, want 200", name, code, body)
		}
	}
	// A login cannot be recorded: it does not complete.
	tab, cancelTab := chromedp.NewContext(ctx)
	login(tab, t, op, appURL+"/oauth2/login?rd=/private", testoidc.User)
	if text, _ := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body"))); !strings.Contains(text, "could not be recorded") {
		t.Errorf("login with Redis down ends on %q, want the sign-in refused", text)
	}
	cancelTab()

	// Redis back (its append-only file kept the logout): the live session
	// works again on both replicas without restarting them; the logged-out
	// one stays refused.
	rdb.Start()
	recovers("Redis restarted", live)
	if resp, err := chromedp.RunResponse(ctx, chromedp.Navigate(appURL+"/private")); err != nil || resp.Status != http.StatusOK {
		t.Errorf("browser after Redis came back: %+v %v, want 200 (its cookie kept through the outage)", resp, err)
	}
	mustRefuse("the logged-out session after Redis restarted", loggedOut, http.StatusUnauthorized)

	// A frozen Redis (accepts connections, never answers): the same.
	rdb.Pause()
	mustRefuse("a live session with Redis frozen", live, http.StatusServiceUnavailable)
	if code, _ := get(replicas["A"], nil, "robot-key-0123456789"); code != http.StatusOK {
		t.Errorf("API key with Redis frozen: %d, want 200", code)
	}
	rdb.Resume()
	recovers("Redis resumed", live)
}

// browserCookies returns the cookies the browser holds for appURL, as a
// client replaying them would send them.
func browserCookies(ctx context.Context, t *testing.T, appURL string) []*http.Cookie {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{appURL}})
	if err != nil {
		t.Fatalf("reading the browser's cookies: %v", err)
	}
	var out []*http.Cookie
	for _, c := range res.Cookies {
		out = append(out, &http.Cookie{Name: c.Name, Value: c.Value})
	}
	if len(out) == 0 {
		t.Fatal("the browser holds no cookie after login")
	}
	return out
}
