// Package authn authenticates HTTP requests and turns their credentials into an
// [Identity] that an authorization policy can reason about.
//
// Every kind of credential has its own [Authenticator]: OIDC bearer tokens and
// browser sessions, API keys, identity headers set by a trusted proxy, or the
// explicit no-authentication mode. A [Chain] asks them all, so every credential
// present is verified: one that is present but invalid is refused and never
// falls through to another method.
//
// The package knows nothing of OPA or of authorization: it only says who is
// calling, or that nobody could be identified.
//
// # Authenticators
//
//   - [Bearer]: "Authorization: Bearer" JWTs (ID tokens, access tokens) verified
//     with go-oidc against the issuer's discovery document and key set; opaque
//     access tokens optionally validated at the userinfo endpoint.
//   - [Browser]: the OpenID Connect authorization code flow with PKCE, state and
//     nonce, and an encrypted session cookie.
//   - [APIKeys]: static keys from YAML or the environment.
//   - [ProxyHeaders]: identity headers from trusted proxies only.
//   - [None]: anonymous, for services authenticated upstream.
//   - SAML 2.0 browser logins: package authn/saml, apart so that programs
//     without SAML link no XML-signature code.
//
// [ConfigFromEnv] reads the variables of the fastapi-opa deployment guide
// (APP_URI, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_WELL_KNOWN).
//
// # Wiring into a middleware
//
// Package authz does this wiring: give its middleware the authenticator (a
// [Chain] of them) and nothing else. Browser flows ([Browser], the SAML
// service provider of package authn/saml) implement [SessionRoutes], which
// the authz guard mounts in front of authentication. A middleware of your own
// does, for every request, in this order:
//
//  1. Strip proxy identity headers from untrusted peers: [ProxyHeaders.Sanitize],
//     or [StripIdentityHeaders] when no proxy is trusted at all.
//  2. Let the [SessionRoutes] middleware run first: it serves the login,
//     callback and logout routes, refreshes sessions and removes invalid
//     session cookies.
//  3. Call [Chain.Authenticate]. On [ErrNoCredential] call [Chain.Challenge];
//     if it wrote nothing, answer 401 with a WWW-Authenticate header of
//     [WWWAuthenticate](err). Any other error is 401 with the same header (or
//     503 when it wraps [ErrUnavailable]). Otherwise authorize the [Identity].
//
// # Sessions and replay
//
// Session cookies are stateless by default (with BrowserConfig.SessionData
// the session is kept on the server and the cookie holds only a reference):
// whoever holds a copy holds the session until it ends. What bounds a stolen or replayed cookie: it is HttpOnly, Secure
// and SameSite=Lax; it dies with BrowserConfig.SessionLifetime whatever the
// refreshes; and logout records its session ID in a [SessionStore] until
// then, so a copy made before logout is refused afterwards (a logout that
// cannot be recorded answers 503 and says so). The default store is in
// memory ([NewMemorySessionStore]): with several replicas, give them a shared
// one, such as package authn/redisstore's, which is also a [SessionDataStore]. A login is recorded
// there once the provider confirmed its code (a SAML assertion once
// verified), so a callback cannot be replayed, and callbacks without a valid
// code record nothing. Revocations and used logins are bounded separately.
//
// # Tests
//
// The tests start a small OpenID Provider of the module's own
// (authn/internal/testop) on loopback. The tests against zitadel's OP and in
// a real browser (Chromium) live in the e2e module.
package authn

import (
	"errors"
	"fmt"
	"net/http"
)

// Method names the way an identity was established. It reaches the policy
// input as user.method.
const (
	MethodOIDC   = "oidc"
	MethodAPIKey = "apikey"
	MethodHeader = "header"
	MethodNone   = "none"
	// MethodSAML names identities established by a SAML assertion (package
	// authn/saml).
	MethodSAML = "saml"
)

// Identity is an authenticated caller.
type Identity struct {
	// Subject is the stable identifier of the caller: the token's sub claim,
	// the API key's subject or the user header set by the proxy.
	Subject string
	// Method is how the caller was authenticated (MethodOIDC, MethodAPIKey, ...).
	Method string
	// Claims are the caller's verified attributes (token claims, the API key's
	// claims, the proxy's email and groups). Values are JSON-compatible:
	// string, bool, float64/json.Number, []any, map[string]any.
	Claims map[string]any
	// Token is the raw credential (bearer token or ID token) when there is one.
	// It never reaches the policy input or a log unless the middleware is told
	// to preserve tokens.
	Token string
}

// String describes the identity without any credential, so it is safe to log.
func (id *Identity) String() string {
	if id == nil {
		return "anonymous"
	}
	return fmt.Sprintf("%s:%s", id.Method, id.Subject)
}

// ErrNoCredential is returned by an [Authenticator] that found no credential of
// its kind in the request. A [Chain] then asks the next authenticator.
var ErrNoCredential = errors.New("authn: no credential")

// An Authenticator identifies the caller of a request.
//
// Authenticate returns the caller's identity; ErrNoCredential (possibly
// wrapped) when the request carries no credential of its kind; or any other
// error when a credential is present but invalid, which the middleware answers
// with 401 Unauthorized. It must be safe for concurrent use.
type Authenticator interface {
	Authenticate(r *http.Request) (*Identity, error)
}

// AuthenticatorFunc adapts a function to the [Authenticator] interface.
type AuthenticatorFunc func(r *http.Request) (*Identity, error)

// Authenticate calls f(r).
func (f AuthenticatorFunc) Authenticate(r *http.Request) (*Identity, error) { return f(r) }

// A Challenger is an [Authenticator] that knows how to ask an unauthenticated
// caller for credentials, for example by redirecting a browser to the OpenID
// Provider's login page. Challenge reports whether it wrote a response; when it
// returns false the middleware answers 401 itself.
type Challenger interface {
	Challenge(w http.ResponseWriter, r *http.Request) bool
}

// Chain asks every authenticator in order, so that every credential present
// is verified: one that is present but invalid refuses the request, even
// when an earlier authenticator accepted another credential (an API key and
// a forged bearer token: the token is checked, and refused). When several
// credentials are valid, the first authenticator's identity is the caller.
// When none finds a credential, Chain returns ErrNoCredential.
type Chain []Authenticator

// Authenticate implements [Authenticator].
func (c Chain) Authenticate(r *http.Request) (*Identity, error) {
	var found *Identity
	for _, a := range c {
		id, err := a.Authenticate(r)
		if errors.Is(err, ErrNoCredential) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if id == nil {
			return nil, errors.New("authn: authenticator returned neither identity nor error")
		}
		if found == nil {
			found = id
		}
	}
	if found == nil {
		return nil, ErrNoCredential
	}
	return found, nil
}

// Challenge asks the first authenticator in the chain that is a [Challenger].
func (c Chain) Challenge(w http.ResponseWriter, r *http.Request) bool {
	for _, a := range c {
		if ch, ok := a.(Challenger); ok && ch.Challenge(w, r) {
			return true
		}
	}
	return false
}

// CredentialError reports a credential that is present but invalid. The
// middleware answers it with 401 Unauthorized and, when Challenge is set, a
// WWW-Authenticate header with that value. Its message never contains the
// credential itself.
type CredentialError struct {
	// Method is the authenticator that refused the credential (MethodOIDC, ...).
	Method string
	// Challenge is the WWW-Authenticate value to send, for example
	// `Bearer error="invalid_token"`. Empty means the middleware's default.
	Challenge string
	// Err says why the credential was refused.
	Err error
}

// Error implements error.
func (e *CredentialError) Error() string {
	return fmt.Sprintf("authn: invalid %s credential: %v", e.Method, e.Err)
}

// Unwrap returns the underlying reason.
func (e *CredentialError) Unwrap() error { return e.Err }

// ErrUnavailable marks a failure to check a credential because a dependency,
// typically the OpenID Provider's discovery, key or userinfo endpoint, could
// not be reached. Errors wrapping it are still errors (the request is refused)
// but a middleware may answer 503 instead of 401.
var ErrUnavailable = errors.New("authn: identity provider unavailable")

// DefaultChallenge is the WWW-Authenticate value sent to API clients that
// presented no credential.
const DefaultChallenge = "Bearer"

// WWWAuthenticate returns the WWW-Authenticate value to send with a 401 for
// err, the error an [Authenticator] returned: the [CredentialError]'s
// challenge when it has one, otherwise [DefaultChallenge].
func WWWAuthenticate(err error) string {
	var ce *CredentialError
	if errors.As(err, &ce) && ce.Challenge != "" {
		return ce.Challenge
	}
	return DefaultChallenge
}

func invalid(method, challenge string, err error) error {
	return &CredentialError{Method: method, Challenge: challenge, Err: err}
}
