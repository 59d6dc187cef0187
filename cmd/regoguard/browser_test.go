package main_test

import (
	"context"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/regoguard/regoguard/internal/testbrowser"
	"github.com/regoguard/regoguard/internal/testoidc"
)

// A real browser logs in through a real OpenID Provider to a service behind
// `regoguard serve`, whose policy decides: the allowed user lands on the
// page it asked for and sees the upstream's answer; after logout, a user the
// policy denies sees 403.
func TestServeBrowserLoginWithPolicy(t *testing.T) {
	ctx := testbrowser.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // serve takes the address over
	appURL := "http://" + addr
	op := testoidc.StartZitadel(t, appURL+"/oauth2/callback")

	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<p id="who">hello %s at %s</p><p id="cookies">%s</p>`,
			html.EscapeString(r.Header.Get("X-Auth-Request-User")), html.EscapeString(r.URL.RequestURI()),
			html.EscapeString(r.Header.Get("Cookie")))
	}))
	t.Cleanup(up.Close)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "p.rego"), []byte(`package httpapi.authz
default allow := false
allow if input.user.sub == "id1"
reason := "only id1 may read" if not allow
`), 0o600); err != nil {
		t.Fatal(err)
	}
	startServe(t, []string{"OIDC_CLIENT_SECRET=" + op.ClientSecret, "OIDC_WELL_KNOWN=" + op.Issuer + "/.well-known/openid-configuration"},
		"--listen", addr, "--upstream", up.URL, "--policy", dir,
		"--oidc-client-id", op.ClientID, "--app-uri", appURL, "--insecure-cookie",
		"--session-key", strings.Repeat("ab", 32))

	const page = "/private/page?q=1&r=two%2Fthree"
	login := func(ctx context.Context, user string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(appURL+page), chromedp.WaitVisible(chromedp.ID("username"))); err != nil {
			t.Fatalf("redirect to the login form: %v", err)
		}
		if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, op.Issuer+"/login/username") {
			t.Fatalf("login form at %s", loc)
		}
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.ID("username"), user),
			chromedp.SendKeys(chromedp.ID("password"), testoidc.Password),
		); err != nil {
			t.Fatalf("login form: %v", err)
		}
		// RunResponse waits until the redirects after the form end in a
		// loaded page (the provider, the callback, the page asked for).
		if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`))); err != nil {
			t.Fatalf("login form submit: %v", err)
		}
	}

	login(ctx, testoidc.User)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("who"))); err != nil {
		t.Fatalf("protected page: %v", err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	who, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("who")))
	if loc != appURL+page || who != "hello id1 at "+page {
		t.Fatalf("landed on %s seeing %q, want the page asked for, answered by the upstream for id1", loc, who)
	}
	if cookies, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("cookies"))); strings.Contains(cookies, "regoguard") {
		t.Errorf("the session cookie reached the upstream: %q", cookies)
	}

	// Logout: the form, then the provider's end_session page.
	if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(appURL+"/oauth2/logout")); err != nil {
		t.Fatalf("logout page: %v", err)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("logout"))); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, op.Issuer) {
		t.Fatalf("logout ended at %s, want the provider's end_session endpoint", loc)
	}

	// A user the policy denies: 403 with the policy's reason.
	tab, cancel := chromedp.NewContext(ctx)
	defer cancel()
	login(tab, testoidc.User2)
	if text, _ := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body"))); !strings.Contains(text, "only id1 may read") {
		t.Fatalf("denied user sees %q, want the policy's reason", text)
	}
	resp, err := chromedp.RunResponse(tab, chromedp.Navigate(appURL+page))
	if err != nil || resp.Status != http.StatusForbidden {
		t.Fatalf("denied user: %+v %v, want 403", resp, err)
	}
}
