package authn_test

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/regoguard/regoguard/authn"
)

// An upstream behind CGI, WSGI, PHP or Rack reads these three headers as
// one; a HeaderSet does too.
func ExampleHeaderSet() {
	identity := authn.NewHeaderSet(authn.IdentityHeaders()...)
	for _, name := range []string{"X-Auth-Request-User", "X_Auth_Request_User", "x-auth_request-user", "X-Request-Id"} {
		fmt.Println(name, identity.Has(name))
	}
	h := http.Header{"X-Api-Key": {"k1"}, "X_api_key": {"k2"}}
	fmt.Println("repeated:", authn.NewHeaderSet("X-API-Key").Repeated(h))
	// Output:
	// X-Auth-Request-User true
	// X_Auth_Request_User true
	// x-auth_request-user true
	// X-Request-Id false
	// repeated: x-api-key
}

// ForwardedIdentity writes the identity headers an upstream (or a second
// regoguard trusting this one) reads back as the same identity, and
// refuses an identity that would read back as another.
func ExampleForwardedIdentity() {
	id := &authn.Identity{Subject: "alice", Method: authn.MethodOIDC, Claims: map[string]any{
		"email": "alice@example.com", "email_verified": false, "groups": []any{"readers", "Domain Users"},
	}}
	h, _ := authn.ForwardedIdentity(id, authn.ForwardOptions{})
	fmt.Println(h.Get("X-Auth-Request-User"), h.Get("X-Auth-Request-Groups"), h.Get("X-Auth-Request-Email") == "")

	odd := &authn.Identity{Subject: "bob", Method: authn.MethodOIDC, Claims: map[string]any{"groups": []any{"readers,admins"}}}
	_, err := authn.ForwardedIdentity(odd, authn.ForwardOptions{})
	fmt.Println(errors.Is(err, authn.ErrUnrepresentable))
	// Output:
	// alice readers,Domain Users true
	// true
}
