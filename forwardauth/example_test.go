package forwardauth_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/forwardauth"
	"github.com/regoguard/regoguard/policy"
)

// A forward-auth endpoint for nginx's auth_request: the check describes the
// original request in X-Original-Method and X-Original-URI.
func Example() {
	p, _ := policy.Parse(map[string]string{"p.rego": `package httpapi.authz
allow if input.method == "GET"`}, nil)
	engine, _ := policy.New(context.Background(), policy.Config{Logger: slog.New(slog.DiscardHandler)}, p)
	keys, _ := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{{Key: "reader-key-0123456789", Subject: "reader"}}})
	guard, _ := authz.New(authz.Config{Authenticator: keys, Evaluator: engine, Logger: slog.New(slog.DiscardHandler)})
	h, _ := forwardauth.New(forwardauth.Config{Guard: guard, TrustedProxies: []string{"192.0.2.0/24"}})

	for _, method := range []string{"GET", "DELETE"} {
		r := httptest.NewRequest("GET", "/_auth", nil)
		r.RemoteAddr = "192.0.2.10:51234" // nginx
		r.Header.Set("X-Original-Method", method)
		r.Header.Set("X-Original-URI", "/orders/7")
		r.Header.Set("X-API-Key", "reader-key-0123456789")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		fmt.Println(method, w.Code, w.Header().Get("X-Auth-Request-User"))
	}
	// Output:
	// GET 200 reader
	// DELETE 403
}
