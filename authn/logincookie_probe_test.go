package authn

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/authn/internal/testop"
	"github.com/regoguard/regoguard/authn/internal/websession"
)

// Issue #22, class 6, OIDC browser flow: a page that makes a browser start
// many logins, each with a long return path, must not make the callback's
// Cookie header grow without bound (each attempt used to keep a cookie of
// its own for the login timeout: 40 attempts at a 2.8 KB path made the
// callback carry about 150 KB, and any server answers that 431), and the
// user's genuine login afterwards must succeed.
func TestBrowserLoginCookieBomb(t *testing.T) {
	m := testop.Start(t)
	app := newTestApp(t, m.Issuer(), m.ClientID, m.ClientSecret, nil)
	through, probes := 0, 0
	for _, pathLen := range []int{100, 2800, 4000} {
		jar := newJar(t)
		c := noRedirects(&http.Client{Jar: jar})
		for i := range 40 {
			probes++
			target := "/p?i=" + strings.Repeat("a", pathLen) + string(rune('a'+i%26))
			resp, err := c.Do(mustRequest(t, app.URL+target))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusFound {
				t.Fatalf("challenge %d: %d", i, resp.StatusCode)
			}
		}
		cb, _ := url.Parse(app.URL + DefaultCallbackPath)
		n, size := cookieHeader(jar.Cookies(cb))
		t.Logf("40 challenges at a %d-byte path: %d login cookies, Cookie header %d bytes at the callback", pathLen, n, size)
		if n > websession.LoginSlots {
			through += n - websession.LoginSlots
		}
		if size > 8<<10 {
			through++
			t.Errorf("the callback's Cookie header is %d bytes", size)
		}
		// The genuine login still completes, with the same browser.
		resp, err := (&http.Client{Jar: jar}).Do(mustRequest(t, app.URL+"/p"))
		if err != nil {
			t.Fatal(err)
		}
		if b := body(t, resp); resp.StatusCode != http.StatusOK || !strings.Contains(b, "hello "+testop.DefaultUser().Subject) {
			through++
			t.Errorf("the genuine login after the bomb: %d %s", resp.StatusCode, b)
		}
	}
	t.Logf("login-cookie bomb probes: %d challenges, let through: %d", probes, through)
	if through > 0 {
		t.Fatalf("%d login cookies or failures beyond the bound", through)
	}
}

// cookieHeader is the number of cookies and the size of the Cookie header
// a browser would send with them.
func cookieHeader(cs []*http.Cookie) (int, int) {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = c.Name + "=" + c.Value
	}
	return len(cs), len(strings.Join(parts, "; "))
}
