package authz_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/authz"
)

// TestDeclaredCookieSpellingsProbe sends the declared session cookie (sid)
// in spellings that Go's cookie parser skips but common upstream parsers
// (Node's cookie, Python's SimpleCookie after a trim, PHP) read as sid: a
// credential the middleware neither verified nor removed would reach the
// application, which may then act for another caller than the policy saw.
// Header spellings of a declared header are refused as a class (x_auth for
// X-Auth); cookie spellings must at least never reach the handler.
// Count what gets through: must be 0.
func TestDeclaredCookieSpellingsProbe(t *testing.T) {
	cookies := []string{
		"sid =SECRET-cookie",
		"theme=dark; sid  =SECRET-cookie",
		"sid\t=SECRET-cookie",
		"theme=dark;sid = SECRET-cookie",
	}
	through := 0
	for _, c := range cookies {
		var got *http.Request
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r })
		m, err := authz.New(authz.Config{Authenticator: customAuth{}, Evaluator: engine(t, "testdata/regoguard"), AllowAnonymous: true})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/api/x", nil)
		r.Header.Set("X-Custom-Token", "ok")
		r.Header.Set("Cookie", c)
		m.Handler(next).ServeHTTP(httptest.NewRecorder(), r)
		if got != nil && strings.Contains(strings.Join(got.Header.Values("Cookie"), ";"), "SECRET-cookie") {
			through++
			t.Errorf("Cookie %q reached the handler as %q", c, got.Header.Values("Cookie"))
		}
	}
	if through != 0 {
		t.Errorf("%d of %d spellings of the declared cookie reached the handler (want 0)", through, len(cookies))
	}
}
