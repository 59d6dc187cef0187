package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/regoguard/regoguard/internal/testkit/testoidc"
)

// login opens pageURL, which must redirect to op's login form, and signs in
// as user; it returns when the redirects after the form end in a loaded page.
func login(ctx context.Context, t *testing.T, op *testoidc.OP, pageURL, user string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(pageURL), chromedp.WaitVisible(chromedp.ID("username"))); err != nil {
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
	// RunResponse waits until the redirects after the form (the provider,
	// the callback, the page asked for) end in a loaded page.
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.CSS(`button[type="submit"]`))); err != nil {
		t.Fatalf("login form submit: %v", err)
	}
}

// logout submits the logout form and checks that it ends at the provider's
// end_session endpoint.
func logout(ctx context.Context, t *testing.T, op *testoidc.OP, appURL string) {
	t.Helper()
	// (The page's CSP has no form-action: Chromium applies it to the
	// redirect that follows the POST, which would block the provider.)
	if _, err := chromedp.RunResponse(ctx, chromedp.Navigate(appURL+"/oauth2/logout")); err != nil {
		t.Fatalf("logout page: %v", err)
	}
	if _, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("logout"))); err != nil {
		t.Fatalf("logout: %v", err)
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, op.Issuer) {
		t.Fatalf("logout ended at %s, want the provider's end_session endpoint", loc)
	}
}

// mustBeRefused checks that a user the policy denies, already signed in on
// tab, sees 403 with the policy's reason at pageURL.
func mustBeRefused(tab context.Context, t *testing.T, pageURL, reason string) {
	t.Helper()
	if text, _ := chromedp.Run(tab, chromedp.Text(chromedp.CSS("body"))); !strings.Contains(text, reason) {
		t.Fatalf("denied user sees %q, want the policy's reason %q", text, reason)
	}
	resp, err := chromedp.RunResponse(tab, chromedp.Navigate(pageURL))
	if err != nil || resp.Status != http.StatusForbidden {
		t.Fatalf("denied user: %+v %v, want 403", resp, err)
	}
}
