package authn

import (
	"log/slog"
	"time"

	"github.com/regoguard/regoguard/authn/internal/websession"
)

// MinCookieKeyLen is the minimum length of a cookie secret.
const MinCookieKeyLen = websession.MinKeyLen

// ErrSessionTooLarge is reported when a session does not fit in the allowed
// number of cookies even after trimming.
var ErrSessionTooLarge = websession.ErrSessionTooLarge

// SessionConfig is what every browser login of regoguard configures alike:
// the OpenID Connect flow ([BrowserConfig]) and the SAML service provider
// (package authn/saml) embed it. The defaults are the same for both, but
// for the cookie's name.
type SessionConfig struct {
	// AppURI is the external base URL of the application (APP_URI), e.g.
	// "https://app.example.com". Required.
	AppURI string
	// CookieName names the session cookie; each login has its own default.
	// It is what the login declares as its credential
	// ([CredentialReader]): the middleware keeps it out of inputs, logs
	// and upstream requests.
	CookieName string
	// CookieKeys are the secrets sealing the session and login cookies,
	// each at least 32 bytes. The first seals new cookies, all open them
	// (key rotation). Required.
	CookieKeys [][]byte
	// InsecureCookies drops the Secure attribute. Allowed only when AppURI
	// is plain http on localhost, 127.0.0.1 or [::1] (development and
	// tests).
	InsecureCookies bool
	// SessionLifetime bounds a session from login, refreshes included (and,
	// for SAML, the assertion's SessionNotOnOrAfter bounds it further).
	// Default 12h.
	SessionLifetime time.Duration
	// LoginTimeout bounds the time between the redirect to the identity
	// provider and its answer. Default 10m.
	LoginTimeout time.Duration
	// MaxCookies is how many cookies a session may be split across (name,
	// name.1, ...). Default 4. A session that does not fit fails the login
	// with a clear error page.
	MaxCookies int
	// Store records used logins (replay protection) and sessions revoked
	// by logout. Default: a [NewMemorySessionStore] (one process);
	// replicas share one.
	Store SessionStore
	// Logger. Default slog.Default(). Tokens, assertions and cookies are
	// never logged.
	Logger *slog.Logger
	// Now is the clock of sessions. Default time.Now.
	Now func() time.Time
}
