package saml_test

import (
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/authn/saml"
	"github.com/regoguard/regoguard/internal/testkit/testsaml"
)

// Issue #22, class 6: a login-cookie bomb. Every challenge set a login
// cookie of its own (kept 10 minutes) holding a return path of the
// requester's choosing: about 20 page loads at a 2.8 KB path made the ACS
// POST carry a 79 KB Cookie header, which serve's 64 KiB header limit
// answers 431, locking the user out. Pending logins are now at most four
// cookies, each with a return path of at most 1 KB, and the genuine login
// after the bomb succeeds.
func TestSAMLLoginCookieBomb(t *testing.T) {
	app := startSAMLApp(t)
	acs, _ := url.Parse(app.URL + saml.DefaultACSPath)
	through, probes := 0, 0
	for _, pathLen := range []int{100, 2800, 4000} {
		jar, _ := cookiejar.New(nil)
		c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		for i := range 40 {
			probes++
			req, _ := http.NewRequest(http.MethodGet, app.URL+"/page?i="+strings.Repeat("a", pathLen)+string(rune('a'+i%26)), nil)
			req.Header.Set("Accept", "text/html")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("challenge %d: %d", i, resp.StatusCode)
			}
		}
		var parts []string
		for _, ck := range jar.Cookies(acs) {
			parts = append(parts, ck.Name+"="+ck.Value)
		}
		size := len(strings.Join(parts, "; "))
		t.Logf("40 challenges at a %d-byte path: %d login cookies, Cookie header %d bytes at the ACS", pathLen, len(parts), size)
		if len(parts) > 4 {
			through += len(parts) - 4
		}
		if size > 8<<10 {
			through++
		}
		// The genuine login, in the same browser.
		browser := &http.Client{Jar: jar}
		target, fields := idpAnswer(t, browser, app, "/page", testsaml.User)
		resp, err := browser.PostForm(target, fields)
		testsaml.Body(t, resp, err)
		if status, id := whoAmI(t, browser, app.URL+"/page"); status != http.StatusOK || id.Sub == "" {
			through++
			t.Errorf("the genuine login after the bomb: %d %+v", status, id)
		}
	}
	t.Logf("SAML login-cookie bomb probes: %d challenges, let through: %d", probes, through)
	if through > 0 {
		t.Fatalf("%d login cookies or failures beyond the bound", through)
	}
}
