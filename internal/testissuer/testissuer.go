// Package testissuer is a minimal OpenID Provider for tests: a loopback
// HTTP server that publishes a discovery document and a JSON Web Key Set,
// and signs whatever claims a test asks for with its RSA key. It lets a
// test craft tokens that a real provider would never issue (no sub, nbf or
// iat in the future, email_verified false, a group holding a comma) and
// have them verified by go-oidc exactly as a real provider's tokens are:
// the verifier fetches the discovery document and keys over HTTP.
package testissuer

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Issuer is a running test provider.
type Issuer struct {
	// URL is the issuer URL (the iss claim of its tokens).
	URL string
	// ClientID is the audience of the tokens Token signs.
	ClientID string
	key      *rsa.PrivateKey
	srv      *httptest.Server
}

// Start starts an issuer on 127.0.0.1 for the test's lifetime.
func Start(t testing.TB) *Issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	iss := &Issuer{ClientID: "regoguard-test", key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{
			"issuer": iss.URL, "jwks_uri": iss.URL + "/keys",
			"authorization_endpoint": iss.URL + "/authorize", "token_endpoint": iss.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	})
	iss.srv = httptest.NewServer(mux)
	iss.URL = iss.srv.URL
	t.Cleanup(iss.srv.Close)
	return iss
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// Claims returns the claims of a valid ID token for sub, issued now and
// valid for an hour; tests change or delete entries before signing.
func (iss *Issuer) Claims(sub string) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": iss.URL, "aud": iss.ClientID, "sub": sub,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

// Sign signs claims with the issuer's key (RS256, kid k1).
func (iss *Issuer) Sign(t testing.TB, claims map[string]any) string {
	t.Helper()
	return SignWith(t, jose.RS256, iss.key, claims)
}

// PublicKey returns the issuer's verification key, as its key set
// publishes it: for forged tokens keyed with it (HS256 over the public key).
func (iss *Issuer) PublicKey() *rsa.PublicKey { return &iss.key.PublicKey }

// SignWith signs claims with any algorithm and key under the issuer's key
// ID k1: for tokens the issuer would never sign (a rogue key, an HMAC keyed
// with the public key).
func SignWith(t testing.TB, alg jose.SignatureAlgorithm, key any, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Token signs a valid ID token for sub with extra claims added.
func (iss *Issuer) Token(t testing.TB, sub string, extra map[string]any) string {
	t.Helper()
	c := iss.Claims(sub)
	for k, v := range extra {
		c[k] = v
	}
	return iss.Sign(t, c)
}
