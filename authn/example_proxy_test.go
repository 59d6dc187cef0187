package authn_test

import (
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/regoguard/regoguard/authn"
)

// ProxyHeaders believes the identity headers of an authenticating proxy
// (OAuth2-Proxy, an ingress with external authentication) only when the TCP
// peer is that proxy; from anyone else they are removed, never believed.
func ExampleProxyHeaders() {
	proxy, err := authn.NewProxyHeaders(authn.ProxyConfig{TrustedCIDRs: []string{"10.0.0.0/8"}})
	if err != nil {
		log.Fatal(err)
	}

	r := httptest.NewRequest(http.MethodGet, "/reports", nil)
	r.RemoteAddr = "10.1.2.3:40000" // the proxy
	r.Header.Set("X-Auth-Request-User", "alice")
	r.Header.Set("X-Auth-Request-Email", "alice@example.com")
	id, err := proxy.Authenticate(r)
	fmt.Println(id.Subject, id.Claims["email"], err)

	r = httptest.NewRequest(http.MethodGet, "/reports", nil)
	r.RemoteAddr = "203.0.113.9:40000" // a client claiming to be alice
	r.Header.Set("X-Auth-Request-User", "alice")
	_, err = proxy.Authenticate(r)
	fmt.Println(errors.Is(err, authn.ErrNoCredential), r.Header.Get("X-Auth-Request-User") == "")
	// Output:
	// alice alice@example.com <nil>
	// true true
}
