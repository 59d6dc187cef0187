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

// TestDeclaredQuerySpellingsProbe sends the declared query credential
// (sig) in spellings frameworks read as sig although Go does not: ASP.NET
// Core compares query names without case, PHP reads "s.ig"-style names
// with "." " " "[" as "_" and "sig[]" as sig, Rails "sig[]" as well. The
// middleware must remove them before the handler (count what gets through:
// must be 0).
func TestDeclaredQuerySpellingsProbe(t *testing.T) {
	queries := []string{"SIG=SECRET-query", "Sig=SECRET-query", "sig[]=SECRET-query", "sig%5B%5D=SECRET-query"}
	through := 0
	for _, q := range queries {
		var got *http.Request
		next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r })
		m, err := authz.New(authz.Config{Authenticator: customAuth{}, Evaluator: engine(t, "testdata/regoguard"), AllowAnonymous: true})
		if err != nil {
			t.Fatal(err)
		}
		r := httptest.NewRequest("GET", "/api/x?page=2&"+q, nil)
		r.Header.Set("X-Custom-Token", "ok")
		m.Handler(next).ServeHTTP(httptest.NewRecorder(), r)
		if got != nil && (strings.Contains(got.URL.RawQuery, "SECRET") || strings.Contains(got.RequestURI, "SECRET")) {
			through++
			t.Errorf("query %q reached the handler as %q", q, got.URL.RawQuery)
		}
	}
	if through != 0 {
		t.Errorf("%d of %d spellings of the declared query parameter reached the handler (want 0)", through, len(queries))
	}
}
