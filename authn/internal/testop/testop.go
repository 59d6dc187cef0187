// Package testop is a small OpenID Provider for the tests of package authn
// and its subpackages, inside the library module: discovery, key set,
// authorization endpoint (approves at once, as the next queued user), token
// endpoint (authorization code with PKCE, refresh tokens), userinfo. Tokens are
// RS256 JWTs signed with go-jose; the clock can be moved forward.
//
// It follows the protocol where the flows under test depend on it (a code is
// good once, for its client and redirect URI, with its PKCE verifier; refresh
// tokens expire) and offers knobs for faults a strict provider never shows
// (ReuseCodes). Tests that need a real third-party provider with a login form
// live in the e2e module.
package testop

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// User is a user of the provider. Which claims reach a token depends on the
// scopes, as at most providers: email and email_verified with "email",
// preferred_username with "profile", groups with "groups".
type User struct {
	Subject           string
	Email             string
	EmailVerified     bool
	PreferredUsername string
	Groups            []string
}

// DefaultUser is the user an authorization approves when none is queued.
func DefaultUser() User {
	return User{Subject: "1234567890", Email: "jane.doe@example.com", EmailVerified: true,
		PreferredUsername: "jane.doe", Groups: []string{"engineering", "design"}}
}

// Config is the registered client and the token lifetimes.
type Config struct {
	ClientID     string
	ClientSecret string
	AccessTTL    time.Duration // access and ID tokens
	RefreshTTL   time.Duration
}

// Keypair is the provider's signing key.
type Keypair struct {
	PrivateKey *rsa.PrivateKey
	PublicKey  *rsa.PublicKey
	kid        string
}

// KeyID returns the key's ID in the key set.
func (k *Keypair) KeyID() (string, error) { return k.kid, nil }

// OP is a running provider.
type OP struct {
	Config
	Keypair *Keypair
	srv     *httptest.Server

	mu         sync.Mutex
	offset     time.Duration
	queue      []User
	codes      map[string]*grant
	refresh    map[string]*grant
	reuseCodes bool
	counters   []counter
}

type counter struct {
	match func(*http.Request) bool
	n     *atomic.Int32
}

type grant struct {
	user        User
	scopes      []string
	nonce       string
	challenge   string
	redirectURI string
	used        bool
	expiry      time.Time
}

var (
	keyOnce sync.Once
	testKey *rsa.PrivateKey
)

// Start starts a provider on 127.0.0.1:0 and stops it when the test ends.
func Start(tb testing.TB) *OP {
	tb.Helper()
	keyOnce.Do(func() {
		var err error
		if testKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
	})
	op := &OP{
		Config: Config{ClientID: "client-" + randHex(4), ClientSecret: "secret-" + randHex(8),
			AccessTTL: 10 * time.Minute, RefreshTTL: time.Hour},
		Keypair: &Keypair{PrivateKey: testKey, PublicKey: &testKey.PublicKey, kid: "key-" + randHex(4)},
		codes:   map[string]*grant{}, refresh: map[string]*grant{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", op.discovery)
	mux.HandleFunc("GET /jwks.json", op.keys)
	mux.HandleFunc("GET /authorize", op.authorize)
	mux.HandleFunc("POST /token", op.token)
	mux.HandleFunc("GET /userinfo", op.userinfo)
	op.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		op.mu.Lock()
		cs := slices.Clone(op.counters)
		op.mu.Unlock()
		for _, c := range cs {
			if c.match(r) {
				c.n.Add(1)
			}
		}
		mux.ServeHTTP(w, r)
	}))
	tb.Cleanup(op.srv.Close)
	return op
}

// Stop shuts the provider down, as an outage would.
func (op *OP) Stop() { op.srv.Close() }

// Issuer is the provider's issuer URL.
func (op *OP) Issuer() string { return op.srv.URL }

// AuthorizationEndpoint is the URL browsers are sent to.
func (op *OP) AuthorizationEndpoint() string { return op.srv.URL + "/authorize" }

// TokenEndpoint is the URL codes and refresh tokens are exchanged at.
func (op *OP) TokenEndpoint() string { return op.srv.URL + "/token" }

// Now is the provider's clock.
func (op *OP) Now() time.Time {
	op.mu.Lock()
	defer op.mu.Unlock()
	return time.Now().Add(op.offset)
}

// FastForward moves the provider's clock forward.
func (op *OP) FastForward(d time.Duration) {
	op.mu.Lock()
	op.offset += d
	op.mu.Unlock()
}

// QueueUser makes u the user of the next authorization.
func (op *OP) QueueUser(u User) {
	op.mu.Lock()
	op.queue = append(op.queue, u)
	op.mu.Unlock()
}

// ReuseCodes makes the token endpoint accept an authorization code more than
// once, as a provider that does not enforce single use would: the fault the
// relying party's own replay bookkeeping must catch.
func (op *OP) ReuseCodes(on bool) {
	op.mu.Lock()
	op.reuseCodes = on
	op.mu.Unlock()
}

// Count returns a counter of the requests that match.
func (op *OP) Count(match func(*http.Request) bool) *atomic.Int32 {
	n := &atomic.Int32{}
	op.mu.Lock()
	op.counters = append(op.counters, counter{match, n})
	op.mu.Unlock()
	return n
}

func (op *OP) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer": op.Issuer(), "authorization_endpoint": op.AuthorizationEndpoint(),
		"token_endpoint": op.TokenEndpoint(), "userinfo_endpoint": op.srv.URL + "/userinfo",
		"jwks_uri": op.srv.URL + "/jwks.json", "response_types_supported": []string{"code"},
		"subject_types_supported": []string{"public"}, "id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported": []string{"openid", "email", "profile", "groups"}, "code_challenge_methods_supported": []string{"S256"},
		"grant_types_supported": []string{"authorization_code", "refresh_token"},
	})
}

func (op *OP) keys(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: op.Keypair.PublicKey, KeyID: op.Keypair.kid, Algorithm: "RS256", Use: "sig"}}})
}

func (op *OP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Host == "" || q.Get("client_id") != op.ClientID || q.Get("response_type") != "code" {
		http.Error(w, "invalid authorization request", http.StatusBadRequest)
		return
	}
	if m := q.Get("code_challenge_method"); m != "" && m != "S256" {
		http.Error(w, "unsupported code_challenge_method", http.StatusBadRequest)
		return
	}
	op.mu.Lock()
	user := DefaultUser()
	if len(op.queue) > 0 {
		user, op.queue = op.queue[0], op.queue[1:]
	}
	code := randHex(16)
	op.codes[code] = &grant{user: user, scopes: strings.Fields(q.Get("scope")), nonce: q.Get("nonce"),
		challenge: q.Get("code_challenge"), redirectURI: q.Get("redirect_uri"), expiry: time.Now().Add(op.offset).Add(time.Minute)}
	op.mu.Unlock()
	rq := redirect.Query()
	rq.Set("code", code)
	rq.Set("state", q.Get("state"))
	redirect.RawQuery = rq.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (op *OP) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		oauthError(w, http.StatusBadRequest, "invalid_request")
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != op.ClientID || subtle.ConstantTimeCompare([]byte(secret), []byte(op.ClientSecret)) != 1 {
		oauthError(w, http.StatusUnauthorized, "invalid_client")
		return
	}
	now := op.Now()
	op.mu.Lock()
	var g *grant
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		g = op.codes[r.PostForm.Get("code")]
		if g == nil || (g.used && !op.reuseCodes) || !now.Before(g.expiry) || g.redirectURI != r.PostForm.Get("redirect_uri") {
			op.mu.Unlock()
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		if g.challenge != "" {
			sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
			if base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge {
				op.mu.Unlock()
				oauthError(w, http.StatusBadRequest, "invalid_grant")
				return
			}
		}
		g.used = true
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		g = op.refresh[rt]
		if g == nil || !now.Before(g.expiry) {
			op.mu.Unlock()
			oauthError(w, http.StatusBadRequest, "invalid_grant")
			return
		}
		delete(op.refresh, rt) // rotated
	default:
		op.mu.Unlock()
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type")
		return
	}
	rt := randHex(24)
	ng := *g
	ng.expiry = now.Add(op.RefreshTTL)
	op.refresh[rt] = &ng
	op.mu.Unlock()

	base := map[string]any{"iss": op.Issuer(), "aud": op.ClientID, "sub": g.user.Subject,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(op.AccessTTL).Unix(), "jti": randHex(8)}
	at := op.Sign(base)
	idc := g.user.claims(g.scopes)
	for k, v := range base {
		idc[k] = v
	}
	if g.nonce != "" {
		idc["nonce"] = g.nonce
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, map[string]any{"access_token": at, "token_type": "Bearer",
		"expires_in": int(op.AccessTTL.Seconds()), "refresh_token": rt, "id_token": op.Sign(idc)})
}

func (op *OP) userinfo(w http.ResponseWriter, r *http.Request) {
	raw, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		oauthError(w, http.StatusUnauthorized, "invalid_token")
		return
	}
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		oauthError(w, http.StatusUnauthorized, "invalid_token")
		return
	}
	payload, err := jws.Verify(op.Keypair.PublicKey)
	var c struct {
		Sub string `json:"sub"`
		Exp int64  `json:"exp"`
	}
	if err != nil || json.Unmarshal(payload, &c) != nil || op.Now().Unix() >= c.Exp {
		oauthError(w, http.StatusUnauthorized, "invalid_token")
		return
	}
	op.mu.Lock()
	for _, g := range op.refresh {
		if g.user.Subject == c.Sub {
			u := g.user.claims(g.scopes)
			u["sub"] = c.Sub
			op.mu.Unlock()
			writeJSON(w, http.StatusOK, u)
			return
		}
	}
	op.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"sub": c.Sub})
}

// Sign signs claims with the provider's key, as its tokens are signed.
func (op *OP) Sign(claims map[string]any) string {
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: op.Keypair.PrivateKey},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", op.Keypair.kid))
	if err != nil {
		panic(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := s.Sign(payload)
	if err != nil {
		panic(err)
	}
	out, _ := jws.CompactSerialize()
	return out
}

func (u User) claims(scopes []string) map[string]any {
	c := map[string]any{}
	for _, s := range scopes {
		switch s {
		case "email":
			if u.Email != "" {
				c["email"] = u.Email
				if u.EmailVerified {
					c["email_verified"] = true
				}
			}
		case "profile":
			if u.PreferredUsername != "" {
				c["preferred_username"] = u.PreferredUsername
			}
		case "groups":
			if len(u.Groups) > 0 {
				c["groups"] = slices.Clone(u.Groups)
			}
		}
	}
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code string) {
	writeJSON(w, status, map[string]string{"error": code})
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
