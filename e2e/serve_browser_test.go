package e2e

import (
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/regoguard/regoguard/internal/testkit/testbrowser"
	"github.com/regoguard/regoguard/internal/testkit/testoidc"
)

// A real browser logs in through a real OpenID Provider to a service behind
// `regoguard serve`, whose policy decides: the allowed user lands on the
// page it asked for and sees the upstream's answer; after logout, a user the
// policy denies sees 403.
func TestServeBrowserLoginWithPolicy(t *testing.T) {
	ctx := testbrowser.New(t)
	addr := freeAddr(t)
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
	startServe(t, addr, []string{"OIDC_CLIENT_SECRET=" + op.ClientSecret, "OIDC_WELL_KNOWN=" + op.Issuer + "/.well-known/openid-configuration"},
		"--upstream", up.URL, "--policy", dir,
		"--oidc-client-id", op.ClientID, "--app-uri", appURL, "--insecure-cookie",
		"--session-key", strings.Repeat("ab", 32))

	const page = "/private/page?q=1&r=two%2Fthree"
	login(ctx, t, op, appURL+page, testoidc.User)
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
	logout(ctx, t, op, appURL)

	// A user the policy denies: 403 with the policy's reason.
	tab, cancel := chromedp.NewContext(ctx)
	defer cancel()
	login(tab, t, op, appURL+page, testoidc.User2)
	mustBeRefused(tab, t, appURL+page, "only id1 may read")
}
