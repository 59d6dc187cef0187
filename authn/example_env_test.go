package authn_test

import (
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/regoguard/regoguard/authn"
)

// The variables of fastapi-opa's deployment guide configure bearer tokens
// and, with APP_URI and session keys, the browser login. The lookup is
// os.LookupEnv in a program; a map keeps the example self-contained.
func ExampleConfigFromEnv() {
	env := map[string]string{
		"OIDC_WELL_KNOWN":        "https://idp.example/realms/r/.well-known/openid-configuration",
		"OIDC_CLIENT_ID":         "orders",
		"APP_URI":                "https://orders.example",
		"REGOGUARD_SESSION_KEYS": "hex:" + strings.Repeat("ab", 32),
	}
	cfg, err := authn.ConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(authn.IssuerURL(cfg.Bearer.Issuer), cfg.Bearer.ClientID)
	fmt.Println(cfg.Browser.AppURI, len(cfg.Browser.CookieKeys))

	// authn.NewBearer(*cfg.Bearer) and authn.NewBrowser(*cfg.Browser) make
	// the authenticators; neither contacts the provider until it is used.
	// Output:
	// https://idp.example/realms/r orders
	// https://orders.example 1
}

// API keys in the YAML form of a key file (authn.LoadAPIKeys) or of an
// environment variable (authn.APIKeysFromEnv).
func ExampleParseAPIKeys() {
	keys, err := authn.ParseAPIKeys("keys.yaml", []byte(`
keys:
  - key: `+authn.HashAPIKey("ci-key-0123456789")+`
    subject: ci-bot
    claims: {groups: [deployers]}
`))
	if err != nil {
		log.Fatal(err)
	}
	auth, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: keys})
	if err != nil {
		log.Fatal(err)
	}
	r := httptest.NewRequest(http.MethodPost, "/deploy", nil)
	r.Header.Set("X-API-Key", "ci-key-0123456789")
	id, err := auth.Authenticate(r)
	fmt.Println(id.Subject, id.Claims["groups"], err)

	// Errors name the file and the line.
	_, err = authn.ParseAPIKeys("keys.yaml", []byte("keys:\n  - key: "+authn.HashAPIKey("other-key-0123456789")+"\n"))
	fmt.Println(err)
	// Output:
	// ci-bot [deployers] <nil>
	// authn: apikey: keys.yaml:2: subject is required
}
