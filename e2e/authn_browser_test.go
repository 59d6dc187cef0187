package e2e

import (
	"context"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/internal/testkit/testbrowser"
	"github.com/regoguard/regoguard/internal/testkit/testoidc"
	"github.com/regoguard/regoguard/policy"
)

// The library's browser flow, in a real browser, through a real OpenID
// Provider's form, in front of the authz guard and a real policy: the allowed
// user lands on the page it asked for, scripts see no cookie, logout goes
// through the provider, and a user the policy denies sees 403.
func TestLibraryBrowserLoginWithPolicy(t *testing.T) {
	ctx := testbrowser.New(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURL := "http://" + ln.Addr().String()
	op := testoidc.StartZitadel(t, appURL+authn.DefaultCallbackPath)
	browser, err := authn.NewBrowser(authn.BrowserConfig{
		Issuer:        op.Issuer + "/.well-known/openid-configuration",
		ClientID:      op.ClientID,
		ClientSecret:  op.ClientSecret,
		Scopes:        []string{"profile", "email", "offline_access"},
		SessionConfig: authn.SessionConfig{AppURI: appURL, InsecureCookies: true, CookieKeys: [][]byte{[]byte("0123456789abcdef0123456789abcdef-e2e-key")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(map[string]string{"p.rego": `package httpapi.authz
default allow := false
allow if input.user.sub == "id1"
reason := "forbidden by policy" if not allow
`}, nil)
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(context.Background(), policy.Config{}, p)
	if err != nil {
		t.Fatal(err)
	}
	guard, err := authz.New(authz.Config{Authenticator: browser, Evaluator: engine})
	if err != nil {
		t.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, _ := authz.FromContext(r.Context())
		names := make([]string, 0, len(r.Cookies()))
		for _, c := range r.Cookies() {
			names = append(names, c.Name)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<p id="who">hello %s at %s</p><p id="cookies">%s</p>`, html.EscapeString(id.Identity.Subject),
			html.EscapeString(r.URL.RequestURI()), html.EscapeString(strings.Join(names, " ")))
	})
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: guard.Handler(app)}} // the guard mounts the login routes itself
	srv.Start()
	t.Cleanup(srv.Close)

	// The allowed user lands on the exact page, query included.
	const page = "/private/page?q=1&r=two%2Fthree"
	login(ctx, t, op, appURL+page, testoidc.User)
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.ID("who"))); err != nil {
		t.Fatalf("protected page: %v", err)
	}
	loc, _ := chromedp.Run(ctx, chromedp.Location())
	who, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("who")))
	if loc != appURL+page || who != "hello id1 at "+page {
		t.Fatalf("landed on %s seeing %q", loc, who)
	}
	if names, _ := chromedp.Run(ctx, chromedp.Text(chromedp.ID("cookies"))); strings.Contains(names, "regoguard") {
		t.Fatalf("session cookie reached the application: %s", names)
	}
	if js, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.cookie`)); err != nil || js != "" {
		t.Fatalf("cookies visible to scripts: %q %v", js, err)
	}
	// Another page of the app, no new login.
	if err := chromedp.Do(ctx, chromedp.Navigate(appURL+"/other"), chromedp.WaitVisible(chromedp.ID("who"))); err != nil {
		t.Fatal(err)
	}

	logout(ctx, t, op, appURL)
	// The protected page asks for a login again.
	if err := chromedp.Do(ctx, chromedp.Navigate(appURL+page), chromedp.WaitVisible(chromedp.ID("username"))); err != nil {
		t.Fatalf("after logout: %v", err)
	}

	// Another user, whom the policy denies, sees 403 (a fresh tab sharing
	// the now logged-out browser).
	tab, cancel := chromedp.NewContext(ctx)
	defer cancel()
	login(tab, t, op, appURL+page, testoidc.User2)
	mustBeRefused(tab, t, appURL+page, "forbidden by policy")
}
