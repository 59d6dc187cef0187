package authz_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

func Example() {
	p := policy.MustParse(map[string]string{"authz.rego": `
package httpapi.authz

default allow := false

allow if input.path_segments[0] == "public"

allow if {
	input.user.authenticated
	input.method == "GET"
}
`}, nil)
	engine, err := policy.New(context.Background(), policy.Config{}, p)
	if err != nil {
		log.Fatal(err)
	}

	// Any authn.Authenticator: OIDC, API keys, proxy headers. This one
	// trusts a header, for the example only.
	auth := authn.AuthenticatorFunc(func(r *http.Request) (*authn.Identity, error) {
		if u := r.Header.Get("X-Example-User"); u != "" {
			return &authn.Identity{Subject: u, Method: authn.MethodAPIKey}, nil
		}
		return nil, authn.ErrNoCredential
	})

	guard, err := authz.New(authz.Config{Authenticator: auth, Evaluator: engine, AllowAnonymous: true})
	if err != nil {
		log.Fatal(err)
	}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := authz.FromContext(r.Context())
		fmt.Fprintf(w, "hello %v", res.Identity)
	})
	handler := guard.Handler(app) // http.ListenAndServe(addr, handler)

	for _, c := range []struct{ method, path, user string }{
		{"GET", "/public/page", ""},
		{"GET", "/orders", ""},
		{"GET", "/orders", "alice"},
		{"DELETE", "/orders", "alice"},
	} {
		r := httptest.NewRequest(c.method, c.path, nil)
		if c.user != "" {
			r.Header.Set("X-Example-User", c.user)
		}
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Println(c.method, c.path, c.user, w.Code)
	}
	// Output:
	// GET /public/page  200
	// GET /orders  401
	// GET /orders alice 200
	// DELETE /orders alice 403
}

func ExampleNewRemote() {
	// fastapi-opa's opa_host mode: every decision is asked of an OPA server.
	remote, err := authz.NewRemote(authz.RemoteConfig{URL: "http://127.0.0.1:8181", Decision: "httpapi/authz"})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(remote.Endpoint())
	// Output: http://127.0.0.1:8181/v1/data/httpapi/authz
}
