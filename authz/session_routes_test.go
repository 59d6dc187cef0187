package authz_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

// Issue #15: mounting the browser flow's routes outside the guard was a
// recipe every user had to follow; without it the guard answered 401 on the
// login and logout routes. The guard now mounts the session routes of its
// authenticator (a Chain's members too) in front of authentication.
func TestGuardMountsSessionRoutes(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close() // an identity provider that cannot be reached
	browser, err := authn.NewBrowser(authn.BrowserConfig{
		Issuer:        dead.URL,
		ClientID:      "c",
		SessionConfig: authn.SessionConfig{AppURI: "https://app.example", CookieKeys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{{Key: "reader-key-0123456789", Subject: "reader"}}})
	if err != nil {
		t.Fatal(err)
	}
	engine, err := policy.New(context.Background(), policy.Config{}, policy.MustParse(map[string]string{"p.rego": `
package httpapi.authz
allow if input.user.sub == "reader"
`}, nil))
	if err != nil {
		t.Fatal(err)
	}
	for name, auth := range map[string]authn.Authenticator{"browser": browser, "chain": authn.Chain{keys, browser}} {
		t.Run(name, func(t *testing.T) {
			guard, err := authz.New(authz.Config{Authenticator: auth, Evaluator: engine})
			if err != nil {
				t.Fatal(err)
			}
			reached := 0
			h := guard.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { reached++ }))
			for _, c := range []struct {
				method, path string
				status       int
				body         string
			}{
				{"GET", authn.DefaultLogoutPath, http.StatusOK, `method="post"`},
				{"GET", authn.DefaultLoginPath + "?rd=/x", http.StatusServiceUnavailable, "sign-in service is unavailable"},
				{"GET", authn.DefaultCallbackPath, http.StatusBadRequest, "no valid state"},
				{"GET", "/x", http.StatusUnauthorized, ""},
			} {
				w := httptest.NewRecorder()
				r := httptest.NewRequest(c.method, "https://app.example"+c.path, nil)
				h.ServeHTTP(w, r)
				if w.Code != c.status || !strings.Contains(w.Body.String(), c.body) {
					t.Errorf("%s %s: %d %q, want %d with %q", c.method, c.path, w.Code, w.Body.String(), c.status, c.body)
				}
			}
			if reached != 0 {
				t.Fatalf("the application was reached %d times", reached)
			}
		})
	}
}
