package authn_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/regoguard/regoguard/authn"
)

func ExampleNewAPIKeys() {
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{
		// Store the hash, not the key: authn.HashAPIKey("k-0123456789abcdef").
		{Key: authn.HashAPIKey("k-0123456789abcdef"), Subject: "billing", Claims: map[string]any{"roles": []any{"billing"}}},
	}})
	if err != nil {
		panic(err)
	}
	r := httptest.NewRequest(http.MethodGet, "/invoices", nil)
	r.Header.Set("X-API-Key", "k-0123456789abcdef")
	id, err := keys.Authenticate(r)
	fmt.Println(id, id.Claims["roles"], err)

	r.Header.Set("X-API-Key", "wrong")
	_, err = keys.Authenticate(r)
	fmt.Println(err)
	// Output:
	// apikey:billing [billing] <nil>
	// authn: invalid apikey credential: unknown API key
}

func ExampleChain() {
	keys, _ := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{{Key: "k-0123456789abcdef", Subject: "ci"}}})
	proxy, _ := authn.NewProxyHeaders(authn.ProxyConfig{TrustedCIDRs: []string{"10.0.0.0/8"}})
	chain := authn.Chain{keys, proxy}

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.7:40000" // the proxy
	r.Header.Set("X-Auth-Request-User", "alice")
	id, err := chain.Authenticate(r)
	fmt.Println(id, err)

	// A wrong API key is refused even though the proxy header would pass.
	r.Header.Set("X-API-Key", "guess")
	_, err = chain.Authenticate(r)
	fmt.Println(err, authn.WWWAuthenticate(err))

	// From anywhere else the proxy headers are ignored and stripped.
	r = httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "203.0.113.9:1234"
	r.Header.Set("X-Forwarded-User", "admin")
	_, err = chain.Authenticate(r)
	fmt.Println(errors.Is(err, authn.ErrNoCredential), r.Header.Get("X-Forwarded-User") == "")
	// Output:
	// header:alice <nil>
	// authn: invalid apikey credential: unknown API key Bearer
	// true true
}

func ExampleNone() {
	// Only for services authenticated upstream: logs a warning.
	a := authn.None(slog.New(slog.NewTextHandler(io.Discard, nil)))
	id, err := a.Authenticate(httptest.NewRequest(http.MethodGet, "/", nil))
	fmt.Printf("%q %q %v\n", id.Method, id.Subject, err)
	// Output:
	// "none" "" <nil>
}

func ExampleNewBearer() {
	bearer, err := authn.NewBearer(authn.BearerConfig{
		Issuer:   "https://login.example.com/realms/acme/.well-known/openid-configuration",
		ClientID: "orders-api",
		Accepted: []authn.TokenKind{authn.AccessToken},
	})
	if err != nil {
		panic(err)
	}
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := bearer.Authenticate(r)
		if err != nil { // ErrNoCredential or an invalid token
			w.Header().Set("WWW-Authenticate", authn.WWWAuthenticate(err))
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, "hello", id.Subject)
	})
	_ = api
}

func ExampleNewBrowser() {
	cfg, err := authn.ConfigFromEnv(os.LookupEnv) // APP_URI, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_WELL_KNOWN, REGOGUARD_SESSION_KEYS
	if err != nil || cfg.Browser == nil {
		return
	}
	browser, err := authn.NewBrowser(*cfg.Browser)
	if err != nil {
		panic(err)
	}
	bearer, _ := authn.NewBearer(*cfg.Bearer)
	if err := browser.Discover(context.Background()); err != nil {
		slog.Warn("identity provider not reachable yet", "error", err)
	}
	chain := authn.Chain{bearer, browser}
	app := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := chain.Authenticate(r)
		if errors.Is(err, authn.ErrNoCredential) && chain.Challenge(w, r) {
			return // a browser was sent to log in
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", authn.WWWAuthenticate(err))
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		fmt.Fprintln(w, "hello", id.Subject)
	})
	// The chain's browser flows serve /oauth2/login, /oauth2/callback and
	// /oauth2/logout and refresh sessions in front of the rest (an authz
	// guard does this by itself).
	http.ListenAndServe(":8080", chain.Middleware(app))
}
