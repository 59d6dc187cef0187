package authn_test

import (
	"errors"
	"fmt"

	"github.com/regoguard/regoguard/authn"
)

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
