package authn

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// TokenKind names a kind of bearer token that a [Bearer] authenticator may
// accept, as fastapi-opa's accepted_methods does.
type TokenKind string

const (
	// IDToken accepts OpenID Connect ID tokens: JWTs signed by the issuer
	// whose audience contains the client ID.
	IDToken TokenKind = "id_token"
	// AccessToken accepts access tokens: JWT access tokens (RFC 9068, or any
	// JWT whose audience contains the configured Audience) verified locally,
	// and, when BearerConfig.OpaqueAccessTokens is set, opaque access tokens
	// validated by the provider's userinfo endpoint.
	AccessToken TokenKind = "access_token"
)

// BearerConfig configures a [Bearer] authenticator.
type BearerConfig struct {
	// Issuer is the OpenID Provider's issuer URL, or the full URL of its
	// discovery document (".../.well-known/openid-configuration").
	Issuer string
	// ClientID is the audience that ID tokens must carry. Required.
	ClientID string
	// Audience is the audience that JWT access tokens must carry. Defaults
	// to ClientID.
	Audience string
	// Accepted lists the token kinds accepted. Defaults to both IDToken and
	// AccessToken.
	Accepted []TokenKind
	// Algorithms lists the accepted JWS signing algorithms. Defaults to the
	// asymmetric algorithms (RS*, ES*, PS*, EdDSA); HS* and "none" are refused.
	Algorithms []string
	// ClockSkew is the tolerance applied to a token's expiry, not-before
	// (nbf) and issued-at (iat) times: a token used before nbf - ClockSkew
	// or issued after now + ClockSkew is refused. Default 30s.
	ClockSkew time.Duration
	// AllowUnverifiedEmail keeps the email claim of a token whose
	// email_verified claim is false. By default (as OAuth2-Proxy does) such
	// an email is removed from the identity's claims, so that neither the
	// policy nor an upstream takes it for the caller's address.
	AllowUnverifiedEmail bool
	// OpaqueAccessTokens validates non-JWT access tokens by calling the
	// provider's userinfo endpoint (the token is valid when the provider
	// answers with a subject). Requires AccessToken in Accepted.
	OpaqueAccessTokens bool
	// UserInfo adds the userinfo endpoint's claims to those of a verified
	// JWT; token claims win on conflicts and the subjects must agree. When
	// the endpoint refuses the token, an access token is refused; an ID
	// token (which userinfo endpoints usually do not take) keeps its own
	// claims.
	UserInfo bool
	// VerifiedTTL bounds how long a verified JWT is remembered, by the
	// SHA-256 of its exact bytes, so that the same token presented again
	// skips the signature check (an RSA verification is most of a
	// request's cost): never past the token's expiry, and default one
	// minute. Only tokens that passed every check are kept (at most 10 000,
	// so no client without a valid token can grow it); a key the provider
	// withdraws stops being trusted for them within VerifiedTTL. Negative:
	// every presentation is verified. Not used with UserInfo, whose answers
	// have their own cache.
	VerifiedTTL time.Duration
	// UserInfoTTL bounds how long a userinfo answer is cached (never beyond
	// the token's expiry). Default 5 minutes.
	UserInfoTTL time.Duration
	// HTTPClient is used for discovery, keys and userinfo. Default: a client
	// with a 10s timeout.
	HTTPClient *http.Client
	// Logger receives debug logs of refused tokens (reasons only, never the
	// tokens). Default slog.Default().
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

// Bearer authenticates "Authorization: Bearer" tokens issued by an OpenID
// Provider. Keys come from the provider's JWKS (go-oidc's RemoteKeySet, which
// caches them and refetches on an unknown key ID). Discovery happens on first
// use, so a Bearer can be built before the provider is up.
type Bearer struct {
	cfg       BearerConfig
	disc      *discovery
	logger    *slog.Logger
	now       func() time.Time
	acceptID  bool
	acceptAT  bool
	verifiers sync.Once
	idV       *oidc.IDTokenVerifier
	atV       *oidc.IDTokenVerifier
	cache     *ttlCache[map[string]any]
	verified  *ttlCache[*Identity]
}

// NewBearer checks cfg and returns a Bearer authenticator. It does not
// contact the provider; see [Bearer.Discover] to do so eagerly.
func NewBearer(cfg BearerConfig) (*Bearer, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("authn: bearer: ClientID is required")
	}
	algs, err := checkAlgorithms(cfg.Algorithms)
	if err != nil {
		return nil, err
	}
	cfg.Algorithms = algs
	if cfg.Audience == "" {
		cfg.Audience = cfg.ClientID
	}
	if len(cfg.Accepted) == 0 {
		cfg.Accepted = []TokenKind{IDToken, AccessToken}
	}
	b := &Bearer{cfg: cfg, now: cfg.Now, logger: cfg.Logger}
	for _, k := range cfg.Accepted {
		switch k {
		case IDToken:
			b.acceptID = true
		case AccessToken:
			b.acceptAT = true
		default:
			return nil, fmt.Errorf("authn: bearer: unknown token kind %q", k)
		}
	}
	if cfg.OpaqueAccessTokens && !b.acceptAT {
		return nil, errors.New("authn: bearer: OpaqueAccessTokens needs AccessToken among the accepted kinds")
	}
	if cfg.ClockSkew == 0 {
		b.cfg.ClockSkew = 30 * time.Second
	}
	if cfg.UserInfoTTL == 0 {
		b.cfg.UserInfoTTL = 5 * time.Minute
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.logger == nil {
		b.logger = slog.Default()
	}
	b.disc, err = newDiscovery(cfg.Issuer, cfg.HTTPClient, b.now)
	if err != nil {
		return nil, err
	}
	b.cache = newTTLCache[map[string]any](10000, b.now)
	if cfg.VerifiedTTL == 0 {
		b.cfg.VerifiedTTL = time.Minute
	}
	if b.cfg.VerifiedTTL > 0 && !cfg.UserInfo {
		b.verified = newTTLCache[*Identity](10000, b.now)
	}
	return b, nil
}

// Discover fetches the provider's discovery document now, so that a
// misconfigured or unreachable provider shows at start.
func (b *Bearer) Discover(ctx context.Context) error {
	_, err := b.disc.get(ctx)
	return err
}

// errSeveralAuthorization refuses a request with more than one
// Authorization header: only one could be checked, and the others would
// reach the upstream unverified.
var errSeveralAuthorization = errors.New("several Authorization headers")

// bearerToken returns the token of an "Authorization: Bearer" header.
func bearerToken(r *http.Request) (string, bool, error) {
	vs := r.Header.Values("Authorization")
	if len(vs) > 1 {
		return "", false, errSeveralAuthorization
	}
	if len(vs) == 0 {
		return "", false, nil
	}
	scheme, tok, ok := strings.Cut(strings.TrimLeft(vs[0], " \t"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false, nil
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != "", nil
}

const (
	invalidTokenChallenge   = `Bearer error="invalid_token"`
	invalidRequestChallenge = `Bearer error="invalid_request"`
)

// Authenticate implements [Authenticator]. It returns ErrNoCredential when
// the request has no "Authorization: Bearer" header.
func (b *Bearer) Authenticate(r *http.Request) (*Identity, error) {
	raw, ok, err := bearerToken(r)
	if err != nil {
		return nil, invalid(MethodOIDC, invalidRequestChallenge, err)
	}
	if !ok {
		return nil, ErrNoCredential
	}
	id, err := b.Verify(r.Context(), raw)
	if err != nil {
		b.logger.DebugContext(r.Context(), "bearer token refused", "error", err)
		challenge := invalidTokenChallenge
		if errors.Is(err, ErrUnavailable) {
			challenge = DefaultChallenge
		}
		return nil, invalid(MethodOIDC, challenge, err)
	}
	return id, nil
}

// Verify checks a raw bearer token and returns the identity it carries.
func (b *Bearer) Verify(ctx context.Context, raw string) (*Identity, error) {
	p, err := b.disc.get(ctx)
	if err != nil {
		return nil, err
	}
	b.verifiers.Do(func() { b.buildVerifiers(p) })

	if strings.Count(raw, ".") != 2 {
		// Not a compact JWS: an opaque access token, or garbage.
		if !b.cfg.OpaqueAccessTokens {
			return nil, errors.New("token is not a JWT")
		}
		claims, err := b.userInfo(ctx, p, raw, b.now().Add(b.cfg.UserInfoTTL))
		if err != nil {
			return nil, err
		}
		sub, _ := claims["sub"].(string)
		if sub == "" {
			return nil, errors.New("userinfo returned no subject")
		}
		return b.identity(sub, claims, raw), nil // claims: a copy, userInfo never returns the cached map
	}

	var key [32]byte
	if b.verified != nil {
		key = sha256.Sum256([]byte(raw))
		if id, ok := b.verified.get(key); ok {
			return id.Clone(), nil // the remembered identity stays whole
		}
	}
	jws, err := jose.ParseSignedCompact(raw, toJOSE(b.cfg.Algorithms))
	if err != nil {
		return nil, fmt.Errorf("malformed or disallowed JWT: %w", err)
	}
	typ, _ := jws.Signatures[0].Header.ExtraHeaders["typ"].(string)
	typedAccess := strings.EqualFold(typ, "at+jwt") || strings.EqualFold(typ, "application/at+jwt")

	var tok *oidc.IDToken
	asAccess := true // verified as an access token (else as an ID token)
	switch {
	case typedAccess && !b.acceptAT:
		return nil, errors.New("access tokens are not accepted")
	case typedAccess:
		tok, err = b.atV.Verify(ctx, raw)
	case b.acceptID:
		asAccess = false
		tok, err = b.idV.Verify(ctx, raw)
		if err != nil && b.acceptAT && b.cfg.Audience != b.cfg.ClientID {
			asAccess = true
			tok, err = b.atV.Verify(ctx, raw)
		}
	default: // access tokens only, untyped JWT
		tok, err = b.atV.Verify(ctx, raw)
	}
	if err != nil {
		return nil, err
	}
	claims := map[string]any{}
	if err := tok.Claims(&claims); err != nil {
		return nil, fmt.Errorf("token claims: %w", err)
	}
	if err := b.checkTimesAndSubject(tok, claims); err != nil {
		return nil, err
	}
	// Some providers (Keycloak) sign refresh and logout tokens like the
	// others and name the kind in a "typ" claim: only ID and access tokens
	// are credentials here.
	if typ, ok := claims["typ"].(string); ok {
		switch strings.ToLower(typ) {
		case "id", "bearer", "at+jwt", "jwt":
		default:
			return nil, fmt.Errorf("token type %q is not accepted", safeErrorCode(typ))
		}
	}
	if b.cfg.UserInfo {
		ttl := b.now().Add(b.cfg.UserInfoTTL)
		if tok.Expiry.Before(ttl) {
			ttl = tok.Expiry
		}
		info, err := b.userInfo(ctx, p, raw, ttl)
		switch {
		case err != nil && asAccess:
			return nil, err
		case err != nil:
			// Userinfo endpoints take access tokens; most refuse an ID
			// token, which then keeps its own (verified) claims.
			if !errors.Is(err, errUserInfoRefused) {
				b.cache.put(sha256.Sum256([]byte(raw)), nil, ttl)
			}
			b.logger.DebugContext(ctx, "userinfo did not accept an ID token; using its claims only", "error", err)
		default:
			if s, _ := info["sub"].(string); s != tok.Subject {
				return nil, errors.New("userinfo subject differs from the token's")
			}
			merged := make(map[string]any, len(info)+len(claims))
			for k, v := range info {
				merged[k] = v
			}
			for k, v := range claims {
				merged[k] = v
			}
			claims = merged
		}
	}
	id := b.identity(tok.Subject, claims, raw)
	if b.verified != nil {
		until := b.now().Add(b.cfg.VerifiedTTL)
		if tok.Expiry.Before(until) {
			until = tok.Expiry
		}
		b.verified.put(key, id.Clone(), until)
	}
	return id, nil
}

// identity is the caller a verified token names. The email claim is left
// out when email_verified says it was not verified, unless
// AllowUnverifiedEmail; claims must be the caller's own map.
func (b *Bearer) identity(sub string, claims map[string]any, raw string) *Identity {
	if !b.cfg.AllowUnverifiedEmail && EmailUnverified(claims) {
		delete(claims, "email")
	}
	return &Identity{Subject: sub, Method: MethodOIDC, Claims: claims, Token: raw}
}

// checkTimesAndSubject applies what go-oidc leaves loose: its not-before
// check has a fixed leeway of five minutes whatever ClockSkew says, and it
// checks neither the issued-at time nor that a subject is there. A token
// without a subject identifies nobody (OpenID Connect and RFC 9068 require
// one); a token issued in the future was not issued by a working provider.
func (b *Bearer) checkTimesAndSubject(tok *oidc.IDToken, claims map[string]any) error {
	if tok.Subject == "" {
		return errors.New("the token has no subject (sub)")
	}
	latest := b.now().Add(b.cfg.ClockSkew)
	for _, name := range []string{"nbf", "iat"} {
		v, ok := claims[name]
		if !ok {
			continue
		}
		n, ok := v.(float64)
		if !ok {
			return fmt.Errorf("the %s claim is not a number", name)
		}
		if t := time.Unix(int64(n), 0); t.After(latest) {
			if name == "nbf" {
				return fmt.Errorf("the token is not valid before %s", t.UTC().Format(time.RFC3339))
			}
			return fmt.Errorf("the token was issued in the future (%s)", t.UTC().Format(time.RFC3339))
		}
	}
	return nil
}

func (b *Bearer) buildVerifiers(p *oidc.Provider) {
	skew := b.cfg.ClockSkew
	now := func() time.Time { return b.now().Add(-skew) }
	b.idV = p.Verifier(&oidc.Config{ClientID: b.cfg.ClientID, SupportedSigningAlgs: b.cfg.Algorithms, Now: now})
	b.atV = p.Verifier(&oidc.Config{ClientID: b.cfg.Audience, SupportedSigningAlgs: b.cfg.Algorithms, Now: now})
}

// errUserInfoRefused is a cached refusal of the userinfo endpoint.
var errUserInfoRefused = errors.New("userinfo refused this token")

// userInfo calls the userinfo endpoint with raw as access token, caching the
// answer by the token's SHA-256 until `until`.
func (b *Bearer) userInfo(ctx context.Context, p *oidc.Provider, raw string, until time.Time) (map[string]any, error) {
	key := sha256.Sum256([]byte(raw))
	if c, ok := b.cache.get(key); ok {
		if c == nil {
			return nil, errUserInfoRefused
		}
		return cloneClaims(c), nil // the cached answer stays whole
	}
	ui, err := p.UserInfo(b.disc.clientContext(ctx), oauth2.StaticTokenSource(&oauth2.Token{AccessToken: raw, TokenType: "Bearer"}))
	if err != nil {
		return nil, fmt.Errorf("userinfo: %w", err)
	}
	claims := map[string]any{}
	if err := ui.Claims(&claims); err != nil {
		return nil, fmt.Errorf("userinfo claims: %w", err)
	}
	b.cache.put(key, claims, until)
	return cloneClaims(claims), nil // the cached answer stays whole
}

func toJOSE(algs []string) []jose.SignatureAlgorithm {
	out := make([]jose.SignatureAlgorithm, len(algs))
	for i, a := range algs {
		out[i] = jose.SignatureAlgorithm(a)
	}
	return out
}

// ttlCache is a small bounded cache keyed by SHA-256 digests.
type ttlCache[V any] struct {
	mu  sync.Mutex
	max int
	now func() time.Time
	m   map[[32]byte]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v     V
	until time.Time
}

func newTTLCache[V any](max int, now func() time.Time) *ttlCache[V] {
	return &ttlCache[V]{max: max, now: now, m: map[[32]byte]ttlEntry[V]{}}
}

func (c *ttlCache[V]) get(k [32]byte) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok || !c.now().Before(e.until) {
		delete(c.m, k)
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(k [32]byte, v V, until time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= c.max {
		now := c.now()
		for key, e := range c.m {
			if !now.Before(e.until) {
				delete(c.m, key)
			}
		}
		if len(c.m) >= c.max {
			clear(c.m) // bounded memory beats a perfect hit rate
		}
	}
	c.m[k] = ttlEntry[V]{v: v, until: until}
}

// claimsJSON normalises claims to the JSON-compatible types the package
// promises (numbers become json.Number).
func claimsJSON(v any) (map[string]any, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	out := map[string]any{}
	if err := dec.Decode(&out); err != nil {
		return nil, err
	}
	return out, nil
}
