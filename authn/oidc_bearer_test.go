package authn

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/regoguard/regoguard/authn/internal/testop"
)

func bearerRequest(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

// signer signs crafted tokens with key, announcing kid.
func sign(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestBearerCraftedTokens(t *testing.T) {
	m := startMockOIDC(t)
	cfg := m.Config
	b, err := NewBearer(BearerConfig{Issuer: m.Issuer(), ClientID: cfg.ClientID, Now: m.Now, UserInfo: true})
	if err != nil {
		t.Fatal(err)
	}

	// A real JWT access token from the test provider, enriched from userinfo.
	tok := mockTokens(t, m, &testop.User{Subject: "alice", Email: "alice@example.com", Groups: []string{"admins"}})
	id, err := b.Authenticate(bearerRequest(tok.AccessToken))
	if err != nil {
		t.Fatalf("access token refused: %v", err)
	}
	if id.Subject != "alice" || id.Claims["email"] != "alice@example.com" {
		t.Fatalf("identity %v claims %v", id, id.Claims)
	}

	kid, _ := m.Keypair.KeyID()
	now := m.Now()
	claims := func(mod func(map[string]any)) map[string]any {
		c := map[string]any{"iss": m.Issuer(), "aud": cfg.ClientID, "sub": "mallory",
			"iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
		if mod != nil {
			mod(c)
		}
		return c
	}
	plain, _ := NewBearer(BearerConfig{Issuer: m.Issuer(), ClientID: cfg.ClientID, Now: m.Now})

	// Control: a crafted token signed with the provider's real key passes,
	// so each refusal below is due to the one thing that is wrong.
	good := sign(t, jose.RS256, m.Keypair.PrivateKey, kid, claims(nil))
	if id, err := plain.Authenticate(bearerRequest(good)); err != nil || id.Subject != "mallory" {
		t.Fatalf("control token refused: %v", err)
	}
	for _, typ := range []string{"ID", "Bearer"} { // Keycloak's typ claims for ID and access tokens
		tok := sign(t, jose.RS256, m.Keypair.PrivateKey, kid, claims(func(c map[string]any) { c["typ"] = typ }))
		if _, err := plain.Authenticate(bearerRequest(tok)); err != nil {
			t.Fatalf("typ %s refused: %v", typ, err)
		}
	}

	rogue, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	pubDER, _ := x509.MarshalPKIXPublicKey(m.Keypair.PublicKey)
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	b64 := base64.RawURLEncoding.EncodeToString
	noneHeader := b64([]byte(`{"alg":"none","typ":"JWT"}`))
	body, _ := json.Marshal(claims(nil))

	bad := map[string]string{
		"expired":         sign(t, jose.RS256, m.Keypair.PrivateKey, kid, claims(func(c map[string]any) { c["exp"] = now.Add(-time.Hour).Unix() })),
		"wrong issuer":    sign(t, jose.RS256, m.Keypair.PrivateKey, kid, claims(func(c map[string]any) { c["iss"] = "http://127.0.0.1:1" })),
		"wrong audience":  sign(t, jose.RS256, m.Keypair.PrivateKey, kid, claims(func(c map[string]any) { c["aud"] = "other-client" })),
		"refresh token":   sign(t, jose.RS256, m.Keypair.PrivateKey, kid, claims(func(c map[string]any) { c["typ"] = "Refresh" })),
		"logout token":    sign(t, jose.RS256, m.Keypair.PrivateKey, kid, claims(func(c map[string]any) { c["typ"] = "Logout" })),
		"alg none":        noneHeader + "." + b64(body) + ".",
		"alg none sig":    noneHeader + "." + b64(body) + "." + b64([]byte("x")),
		"HS256 pub PEM":   sign(t, jose.HS256, pubPEM, kid, claims(nil)),
		"HS256 pub DER":   sign(t, jose.HS256, pubDER, kid, claims(nil)),
		"unknown kid":     sign(t, jose.RS256, rogue, "rogue-kid", claims(nil)),
		"rogue, real kid": sign(t, jose.RS256, rogue, kid, claims(nil)),
		"tampered":        good[:strings.LastIndex(good, ".")] + "." + b64(make([]byte, 256)),
		"garbage":         "garbage",
		"dots":            "..",
		"bad base64":      "!!!.@@@.###",
		"json garbage":    b64([]byte(`{"alg":"RS256"`)) + "." + b64([]byte("{")) + ".",
		"huge":            strings.Repeat("A", 1<<16) + ".e30.",
	}
	for name, tok := range bad {
		t.Run(name, func(t *testing.T) {
			id, err := plain.Authenticate(bearerRequest(tok))
			mustRefuse(t, id, err)
			t.Log(err)
			var ce *CredentialError
			if !errors.As(err, &ce) || ce.Method != MethodOIDC || WWWAuthenticate(err) != `Bearer error="invalid_token"` {
				t.Fatalf("want CredentialError with invalid_token challenge, got %#v", err)
			}
			if strings.Contains(err.Error(), tok) && len(tok) > 10 {
				t.Fatal("error message contains the token")
			}
		})
	}

	// The real token expires with the provider's clock.
	m.FastForward(cfg.AccessTTL + time.Minute)
	_, err = plain.Authenticate(bearerRequest(tok.AccessToken))
	mustRefuse(t, nil, err)

	// No header, or another scheme: not this authenticator's credential.
	_, err = plain.Authenticate(httptest.NewRequest(http.MethodGet, "/", nil))
	mustNoCredential(t, err)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Set("Authorization", "Basic YTpi")
	_, err = plain.Authenticate(r)
	mustNoCredential(t, err)
}

func TestBearerConfigRefusesSymmetricAlgorithms(t *testing.T) {
	for _, alg := range []string{"HS256", "none", "HS512"} {
		if _, err := NewBearer(BearerConfig{Issuer: "https://op.example", ClientID: "c", Algorithms: []string{alg}}); err == nil {
			t.Errorf("%s accepted", alg)
		}
	}
	if _, err := NewBearer(BearerConfig{Issuer: "https://op.example"}); err == nil {
		t.Error("missing ClientID accepted")
	}
}

func TestBearerProviderDown(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	b, err := NewBearer(BearerConfig{Issuer: srv.URL, ClientID: "c"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.Authenticate(bearerRequest("a.b.c"))
	mustRefuse(t, nil, err)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("want ErrUnavailable, got %v", err)
	}
}

func TestIssuerURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://op.example/.well-known/openid-configuration":          "https://op.example",
		"https://op.example/realms/x/.well-known/openid-configuration": "https://op.example/realms/x",
		"https://op.example/":  "https://op.example/",
		" https://op.example ": "https://op.example",
	} {
		if got := IssuerURL(in); got != want {
			t.Errorf("IssuerURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestBearerUnknownKidThrottle: tokens with made-up key IDs must not turn
// every request into a key set fetch at the provider.
func TestBearerUnknownKidThrottle(t *testing.T) {
	m, jwksFetches := startMockOIDCCounting(t, func(r *http.Request) bool { return strings.HasSuffix(r.URL.Path, "jwks.json") })

	var mu sync.Mutex
	clock := time.Now()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	advance := func(d time.Duration) { mu.Lock(); clock = clock.Add(d); mu.Unlock() }
	b, err := NewBearer(BearerConfig{Issuer: m.Issuer(), ClientID: m.ClientID, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := m.Keypair.KeyID()
	claims := map[string]any{"iss": m.Issuer(), "aud": m.ClientID, "sub": "s", "exp": clock.Add(time.Hour).Unix()}
	good := sign(t, jose.RS256, m.Keypair.PrivateKey, kid, claims)
	if _, err := b.Authenticate(bearerRequest(good)); err != nil {
		t.Fatal(err)
	}
	if n := jwksFetches.Load(); n != 1 {
		t.Fatalf("first verification: %d key set fetches", n)
	}
	rogue, _ := rsa.GenerateKey(rand.Reader, 2048)
	for i := range 20 {
		_, err := b.Authenticate(bearerRequest(sign(t, jose.RS256, rogue, fmt.Sprintf("made-up-%d", i), claims)))
		mustRefuse(t, nil, err)
	}
	if n := jwksFetches.Load(); n != 1 {
		t.Fatalf("20 unknown kids within the interval: %d key set fetches, want none beyond the first", n-1)
	}
	// Known keys still verify from the cache meanwhile.
	if _, err := b.Authenticate(bearerRequest(good)); err != nil {
		t.Fatal(err)
	}
	// After the interval one refetch is allowed (a rotated key would be found).
	advance(jwksMinInterval + time.Second)
	for i := range 5 {
		_, err := b.Authenticate(bearerRequest(sign(t, jose.RS256, rogue, fmt.Sprintf("later-%d", i), claims)))
		mustRefuse(t, nil, err)
	}
	if n := jwksFetches.Load(); n != 2 {
		t.Fatalf("after the interval: %d key set fetches, want 2", n)
	}
}

// TestBearerTokenKinds: RFC 9068 access tokens (typ at+jwt) are told apart
// from ID tokens, and each kind is accepted only when configured.
func TestBearerTokenKinds(t *testing.T) {
	m := startMockOIDC(t)
	kid, _ := m.Keypair.KeyID()
	now := m.Now()
	claims := map[string]any{"iss": m.Issuer(), "sub": "svc", "iat": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	withAud := func(aud string) map[string]any {
		c := map[string]any{"aud": aud, "client_id": "caller"}
		for k, v := range claims {
			c[k] = v
		}
		return c
	}
	signTyp := func(typ string, c map[string]any) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: m.Keypair.PrivateKey},
			(&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", kid))
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(c)
		jws, _ := s.Sign(payload)
		out, _ := jws.CompactSerialize()
		return out
	}
	access := signTyp("at+jwt", withAud("orders-api"))
	idTok := signTyp("JWT", withAud("web-app"))

	both, _ := NewBearer(BearerConfig{Issuer: m.Issuer(), ClientID: "web-app", Audience: "orders-api", Now: m.Now})
	onlyID, _ := NewBearer(BearerConfig{Issuer: m.Issuer(), ClientID: "web-app", Audience: "orders-api", Now: m.Now, Accepted: []TokenKind{IDToken}})
	onlyAT, _ := NewBearer(BearerConfig{Issuer: m.Issuer(), ClientID: "web-app", Audience: "orders-api", Now: m.Now, Accepted: []TokenKind{AccessToken}})

	for _, c := range []struct {
		name string
		b    *Bearer
		tok  string
		ok   bool
	}{
		{"both/access", both, access, true},
		{"both/id", both, idTok, true},
		{"onlyID/access", onlyID, access, false},
		{"onlyID/id", onlyID, idTok, true},
		{"onlyAT/access", onlyAT, access, true},
		{"onlyAT/id (audience is the client's, not the API's)", onlyAT, idTok, false},
		{"both/access token for another API", both, signTyp("at+jwt", withAud("billing-api")), false},
		{"both/at+jwt with the client audience", both, signTyp("at+jwt", withAud("web-app")), false},
	} {
		id, err := c.b.Authenticate(bearerRequest(c.tok))
		if c.ok && (err != nil || id.Subject != "svc") {
			t.Errorf("%s: refused: %v", c.name, err)
		}
		if !c.ok {
			if err == nil || errors.Is(err, ErrNoCredential) {
				t.Errorf("%s: accepted", c.name)
			}
		}
	}
	if _, err := NewBearer(BearerConfig{Issuer: m.Issuer(), ClientID: "x", Accepted: []TokenKind{"refresh_token"}}); err == nil {
		t.Error("unknown kind accepted")
	}
	if _, err := NewBearer(BearerConfig{Issuer: m.Issuer(), ClientID: "x", Accepted: []TokenKind{IDToken}, OpaqueAccessTokens: true}); err == nil {
		t.Error("opaque tokens without access tokens accepted")
	}
}
