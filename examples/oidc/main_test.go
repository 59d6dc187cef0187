package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/regoguard/regoguard/internal/testkit/testbrowser"
	"github.com/regoguard/regoguard/internal/testkit/testoidc"
)

// startApp starts a real OpenID Provider and the example, configured from
// the fastapi-opa environment variables, on loopback ports until the test
// ends, and returns the example's URL and the provider.
func startApp(t *testing.T) (string, *testoidc.OP) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURI := "http://" + ln.Addr().String()
	op := testoidc.StartZitadel(t, appURI+"/oauth2/callback")
	env := map[string]string{
		"APP_URI":                appURI,
		"OIDC_WELL_KNOWN":        op.Issuer + "/.well-known/openid-configuration",
		"OIDC_CLIENT_ID":         op.ClientID,
		"OIDC_CLIENT_SECRET":     op.ClientSecret,
		"REGOGUARD_SESSION_KEYS": strings.Repeat("5e", 32),
	}
	cfg, err := configFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx, ln, cfg) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	return appURI, op
}

// login opens page in the browser, is sent to the provider's login form,
// and logs in as user.
func login(t *testing.T, ctx context.Context, op *testoidc.OP, page, user string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.ID("username"))); err != nil {
		t.Fatalf("redirect to the login form: %v", err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, op.Issuer+"/login/username") {
		t.Fatalf("login form at %s", loc)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.ID("username"), user),
		chromedp.SendKeys(chromedp.ID("password"), testoidc.Password),
		chromedp.Click(chromedp.CSS(`button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS("body")),
	); err != nil {
		t.Fatalf("login form: %v", err)
	}
}

// waitText waits until the page's text contains want. It polls from Go
// rather than in the page, since the page may still be navigating through
// the login redirects.
func waitText(t *testing.T, ctx context.Context, want string) {
	t.Helper()
	var body string
	for range 100 {
		if text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body"))); err == nil {
			if body = text; strings.Contains(body, want) {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("page does not show %q:\n%s", want, body)
}

// A real browser logs in at a real provider: the employee sees their own
// salary and is refused another's; their manager, in another browser, sees
// the employee's.
func TestOIDCBrowserLogin(t *testing.T) {
	employee := testbrowser.New(t)
	appURI, op := startApp(t)

	login(t, employee, op, appURI+"/finance/salary/id1", testoidc.User)
	waitText(t, employee, `{"msg":"success","name":"id1"}`)
	if loc, _ := chromedp.Run(employee, chromedp.Location()); loc != appURI+"/finance/salary/id1" {
		t.Errorf("landed on %s, want the page first asked for", loc)
	}
	resp, err := chromedp.RunResponse(employee, chromedp.Navigate(appURI+"/finance/salary/id2"))
	if err != nil || resp.Status != http.StatusForbidden {
		t.Fatalf("another's salary: %+v %v, want 403", resp, err)
	}
	waitText(t, employee, "only the employee and their manager")

	manager := testbrowser.New(t)
	login(t, manager, op, appURI+"/finance/salary/id1", testoidc.User2)
	waitText(t, manager, `{"msg":"success","name":"id1"}`)
}

// Without a session, an API client gets 401 and a browser is sent to the
// provider; a bearer token that is not the provider's is refused.
func TestOIDCWithoutSession(t *testing.T) {
	appURI, op := startApp(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	cases := []struct {
		name, accept, auth string
		status             int
		location           string
	}{
		{"API client", "application/json", "", http.StatusUnauthorized, ""},
		{"forged bearer token", "application/json", "Bearer not-a-token", http.StatusUnauthorized, ""},
		{"browser", "text/html", "", http.StatusFound, op.Issuer},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodGet, appURI+"/finance/salary/id1", nil)
		req.Header.Set("Accept", c.accept)
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc := resp.Header.Get("Location")
		if resp.StatusCode != c.status || !strings.HasPrefix(loc, c.location) {
			t.Errorf("%s: %d to %q, want %d to %s...", c.name, resp.StatusCode, loc, c.status, c.location)
		}
	}
}

func TestOIDCConfigFromEnv(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want string // in the error
	}{
		{"no provider", map[string]string{"APP_URI": "http://127.0.0.1:4000", "OIDC_CLIENT_ID": "app"}, "OIDC_WELL_KNOWN"},
		{"no browser flow", map[string]string{"OIDC_WELL_KNOWN": "https://idp.example.com", "OIDC_CLIENT_ID": "app"}, "APP_URI"},
		{"no session key", map[string]string{"OIDC_WELL_KNOWN": "https://idp.example.com", "OIDC_CLIENT_ID": "app",
			"APP_URI": "http://127.0.0.1:4000"}, "REGOGUARD_SESSION_KEYS"},
	}
	for _, c := range cases {
		_, err := configFromEnv(func(k string) (string, bool) { v, ok := c.env[k]; return v, ok })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want one naming %s", c.name, err, c.want)
		}
	}
}
