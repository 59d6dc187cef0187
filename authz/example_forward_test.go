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

// A reverse proxy behind the middleware hands the caller's identity to its
// upstream in the headers authn.ProxyHeaders reads back; what a client sent
// under those names never gets through.
func ExampleForwardIdentity() {
	engine, err := policy.New(context.Background(), policy.Config{}, policy.MustParse(map[string]string{"authz.rego": `
package httpapi.authz

allow if input.user.sub == "alice"
`}, nil))
	if err != nil {
		log.Fatal(err)
	}
	guard, err := authz.New(authz.Config{Authenticator: exampleUser, Evaluator: engine})
	if err != nil {
		log.Fatal(err)
	}
	upstream := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Println("upstream sees", r.Header.Get("X-Auth-Request-User"), r.Header.Get("X_Auth_Request_Groups") == "")
	})
	handler := guard.Handler(authz.ForwardIdentity(upstream, authn.ForwardOptions{}, nil))

	r := httptest.NewRequest("GET", "/orders", nil)
	r.Header.Set("X-Example-User", "alice")
	r.Header["X_Auth_Request_Groups"] = []string{"admins"} // forged
	handler.ServeHTTP(httptest.NewRecorder(), r)
	// Output:
	// upstream sees alice true
}
