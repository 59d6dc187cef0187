package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/regoguard/regoguard/internal/testkit/testbrowser"
	"github.com/regoguard/regoguard/internal/testsaml"
)

// startApp starts a real SAML IdP (crewjam/saml's samlidp) and the example,
// configured from its environment variables, on loopback ports until the
// test ends, and registers the example's metadata, as served, at the IdP.
func startApp(t *testing.T) (string, *testsaml.IdP) {
	t.Helper()
	idp := testsaml.StartIdP(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	appURI := "http://" + ln.Addr().String()
	key, cert := testsaml.KeyPair(t, "saml example")
	dir := t.TempDir()
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	writePEM(t, filepath.Join(dir, "sp.key"), "PRIVATE KEY", keyDER)
	writePEM(t, filepath.Join(dir, "sp.crt"), "CERTIFICATE", cert.Raw)
	env := map[string]string{
		"APP_URI":           appURI,
		"SAML_IDP_METADATA": idp.URL + "/metadata",
		"SAML_SP_KEY":       filepath.Join(dir, "sp.key"),
		"SAML_SP_CERT":      filepath.Join(dir, "sp.crt"),
		"SESSION_KEY":       strings.Repeat("5a", 32),
	}
	cfg, err := configFromEnv(context.Background(), func(k string) string { return env[k] })
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
	resp, err := http.Get(appURI + "/saml/metadata")
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	idp.Register(t, "example", md)
	return appURI, idp
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// login opens page in a new headless Chromium, is sent to the IdP's login
// form, and logs in as user; the IdP posts its answer back to the ACS.
func login(t *testing.T, idp *testsaml.IdP, page, user string) context.Context {
	t.Helper()
	ctx := testbrowser.New(t)
	if err := chromedp.Do(ctx, chromedp.Navigate(page), chromedp.WaitVisible(chromedp.CSS(`input[name="user"]`))); err != nil {
		t.Fatalf("redirect to the IdP's login form: %v\n%s", err, idp.Log())
	}
	if loc, _ := chromedp.Run(ctx, chromedp.Location()); !strings.HasPrefix(loc, idp.URL+"/sso") {
		t.Fatalf("login form at %s", loc)
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(`input[name="user"]`), user),
		chromedp.SendKeys(chromedp.CSS(`input[name="password"]`), testsaml.Password),
		chromedp.Click(chromedp.CSS(`input[type="submit"]`)),
	); err != nil {
		t.Fatalf("login form: %v", err)
	}
	return ctx
}

// waitText waits until the page's text contains want, polling from Go while
// the browser goes through the IdP's form post and the redirects.
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

// A real browser logs in at a real SAML IdP: the finance user lands on the
// report asked for; a contractor, in another browser, is refused by the
// policy with its reason.
func TestSAMLBrowserLogin(t *testing.T) {
	appURI, idp := startApp(t)
	const page = "/finance/q3"

	alice := login(t, idp, appURI+page, testsaml.User)
	waitText(t, alice, "finance report q3 for alice@example.com")
	if loc, _ := chromedp.Run(alice, chromedp.Location()); loc != appURI+page {
		t.Errorf("landed on %s, want the page first asked for", loc)
	}

	bob := login(t, idp, appURI+page, testsaml.User2)
	waitText(t, bob, "finance staff only")
	resp, err := chromedp.RunResponse(bob, chromedp.Navigate(appURI+page))
	if err != nil || resp.Status != http.StatusForbidden {
		t.Fatalf("contractor: %+v %v, want 403", resp, err)
	}
}

// Without a session an API client gets 401, and a browser is sent to the IdP.
func TestSAMLWithoutSession(t *testing.T) {
	appURI, idp := startApp(t)
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for accept, want := range map[string]int{"application/json": http.StatusUnauthorized, "text/html": http.StatusFound} {
		req, _ := http.NewRequest(http.MethodGet, appURI+"/finance/q3", nil)
		req.Header.Set("Accept", accept)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want || (want == http.StatusFound && !strings.HasPrefix(resp.Header.Get("Location"), idp.URL+"/sso")) {
			t.Errorf("Accept %s: %d to %q, want %d", accept, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}

func TestSAMLConfigFromEnv(t *testing.T) {
	_, err := configFromEnv(context.Background(), func(k string) string {
		return map[string]string{"APP_URI": "http://127.0.0.1:4000", "SAML_IDP_METADATA": "idp.xml"}[k]
	})
	if err == nil || !strings.Contains(err.Error(), "SAML_SP_KEY") {
		t.Fatalf("err = %v, want one naming SAML_SP_KEY", err)
	}
}
