package authn

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/regoguard/regoguard/internal/testbrowser"
)

// TestBrowserChromium logs in through a real OpenID Provider's form in a real
// browser, lands on the page it asked for, is refused by a stand-in policy
// as another user, and logs out.
func TestBrowserChromium(t *testing.T) {
	ctx := testbrowser.New(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://" + ln.Addr().String()
	op := startZitadel(t, appURL+DefaultCallbackPath)
	b, err := NewBrowser(BrowserConfig{Issuer: op.Issuer + "/.well-known/openid-configuration", ClientID: op.ClientID,
		ClientSecret: op.ClientSecret, AppURI: appURL, InsecureCookies: true, CookieKeys: [][]byte{testCookieKey},
		Scopes: []string{"profile", "email", "offline_access"}})
	if err != nil {
		t.Fatal(err)
	}
	// The stand-in for the authorization middleware and its policy: only
	// zitadel's user id1 may see the page. The lead swaps in authz here.
	policy := func(w http.ResponseWriter, r *http.Request, id *Identity) {
		if id.Subject != "id1" {
			http.Error(w, "forbidden by policy", http.StatusForbidden)
			return
		}
		hello(w, r, id)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: b.Middleware(protect(Chain{b}, policy))}}
	srv.Start()
	t.Cleanup(srv.Close)

	const page = "/private/page?q=1&r=two%2Fthree"
	login := func(ctx context.Context, user string) {
		t.Helper()
		if err := chromedp.Do(ctx,
			chromedp.Navigate(appURL+page),
			chromedp.WaitVisible(chromedp.ID("username")),
		); err != nil {
			t.Fatalf("redirect to the login form: %v", err)
		}
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		if !strings.HasPrefix(loc, op.Issuer+"/login/username") {
			t.Fatalf("login form at %s", loc)
		}
		if err := chromedp.Do(ctx,
			chromedp.SendKeys(chromedp.ID("username"), user),
			chromedp.SendKeys(chromedp.ID("password"), opPassword),
		); err != nil {
			t.Fatalf("login form: %v", err)
		}
		// RunResponse waits until the redirects after the form end in a loaded page.
		if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`))); err != nil {
			t.Fatalf("login form submit: %v", err)
		}
	}

	// 1. The allowed user lands on the exact page, query included.
	login(ctx, opUser)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("who"))); err != nil {
		t.Fatalf("protected page: %v", err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	who, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("who")))
	if loc != appURL+page || who != "hello id1 at "+page {
		t.Fatalf("landed on %s seeing %q", loc, who)
	}
	cookieNames, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("cookies")))
	if strings.Contains(cookieNames, "regoguard") {
		t.Fatalf("session cookie reached the application: %s", cookieNames)
	}
	jsCookies, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`))
	if err != nil || jsCookies != "" {
		t.Fatalf("cookies visible to scripts: %q %v", jsCookies, err)
	}
	// Another page of the app, no new login.
	if err := chromedp.Do(ctx, chromedp.Navigate(appURL+"/other"), chromedp.WaitVisible(chromedp.ID("who"))); err != nil {
		t.Fatal(err)
	}

	// 2. Logout: GET shows a form; submitting it clears the session and goes
	// through the provider's end_session_endpoint.
	// (The page's CSP has no form-action: Chromium applies it to the
	// redirect that follows the POST, which would block the provider.)
	if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(appURL+DefaultLogoutPath)); err != nil {
		t.Fatalf("logout page: %v", err)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("logout"))); err != nil {
		t.Fatalf("logout: %v", err)
	}
	loc, _ = chromedp.Run(ctx, chromedp.Location())
	text, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
	if !strings.HasPrefix(loc, op.Issuer) || !strings.Contains(text, "signed out successfully") {
		t.Fatalf("logout ended at %s showing %q, want the provider's end_session", loc, text)
	}
	// The protected page asks for a login again.
	if err := chromedp.Do(ctx, chromedp.Navigate(appURL+page), chromedp.WaitVisible(chromedp.ID("username"))); err != nil {
		t.Fatalf("after logout: %v", err)
	}

	// 3. Another user, whom the policy denies, sees 403 (a fresh tab
	// sharing the now logged-out browser).
	tab, cancel := chromedp.NewContext(ctx)
	defer cancel()
	login(tab, "test-user2")
	loc, _ = chromedp.Run(tab, chromedp.Location())
	text, _ = chromedp.Run(tab, chromedp.Text(chromedp.CSS("body")))
	if loc != appURL+page || !strings.Contains(text, "forbidden by policy") {
		t.Fatalf("denied user at %s seeing %q", loc, text)
	}
	resp, err := chromedp.RunResponse(tab, chromedp.Navigate(appURL+page))
	if err != nil || resp.Status != http.StatusForbidden {
		t.Fatalf("denied user: %v %v", resp, err)
	}
}
