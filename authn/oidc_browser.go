package authn

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/regoguard/regoguard/authn/internal/websession"
)

// Default routes of the browser flow.
const (
	DefaultLoginPath    = "/oauth2/login"
	DefaultCallbackPath = "/oauth2/callback"
	DefaultLogoutPath   = "/oauth2/logout"
)

// BrowserConfig configures a [Browser] authenticator.
type BrowserConfig struct {
	// SessionConfig is what the browser login shares with SAML's (package
	// authn/saml): the application's URI (the redirect URI registered at
	// the provider is AppURI + CallbackPath), the session cookie (default
	// name "__Host-regoguard", or "regoguard" with InsecureCookies), the
	// login timeout (between the redirect to the provider and the
	// callback), the store of used logins and revoked sessions, the logger
	// and the clock. A session too large for MaxCookies is trimmed (ID
	// token, then refresh token dropped) before the login fails.
	SessionConfig

	// Issuer is the OpenID Provider's issuer URL or the full URL of its
	// discovery document (OIDC_WELL_KNOWN).
	Issuer string
	// ClientID and ClientSecret identify this application at the provider
	// (OIDC_CLIENT_ID, OIDC_CLIENT_SECRET). The secret may be empty for a
	// public client; PKCE is always used.
	ClientID     string
	ClientSecret string
	// LoginPath starts a login: GET LoginPath?rd=/some/page. Default
	// /oauth2/login.
	LoginPath string
	// CallbackPath receives the provider's redirect. Default /oauth2/callback.
	CallbackPath string
	// LogoutPath ends the session: POST (GET shows a confirmation form).
	// Default /oauth2/logout.
	LogoutPath string
	// PostLogoutRedirectURI is sent to the provider's end_session_endpoint;
	// it must be registered there. Empty: the provider's default page.
	PostLogoutRedirectURI string
	// Scopes requested; "openid" is always added. Default: openid, profile,
	// email. Add "offline_access" when the provider needs it to issue the
	// refresh tokens used to extend sessions.
	Scopes []string
	// Algorithms and ClockSkew as in [BearerConfig].
	Algorithms []string
	ClockSkew  time.Duration
	// SessionData, when set, keeps sessions on the server: the cookie holds
	// only a reference, for providers whose tokens overflow cookies. See
	// [SessionDataStore]. Default: sessions live in the cookies.
	SessionData SessionDataStore
	// HTTPClient talks to the provider. Default: 10s timeout.
	HTTPClient *http.Client
}

// Browser runs the OpenID Connect authorization code flow for browsers, with
// PKCE (S256), state and nonce, and keeps the result in an encrypted session
// cookie.
//
// It is an [Authenticator] (session cookie → identity), a [Challenger]
// (redirects GET requests that accept text/html to the provider; other
// clients get a 401 from the middleware), and serves its routes (LoginPath,
// CallbackPath, LogoutPath) through [Browser.Middleware], which also refreshes
// sessions whose ID token expired and drops invalid session cookies so that
// the browser is sent to log in again. A middleware of package authz whose
// authenticator is (or chains) a Browser mounts it itself, in front of
// authorization ([SessionRoutes]); elsewhere mount it outside whatever
// authenticates:
//
//	handler := browser.Middleware(protected)
type Browser struct {
	cfg       BrowserConfig
	disc      *discovery
	logger    *slog.Logger
	now       func() time.Time
	session   *websession.Codec
	login     *websession.Codec
	jar       websession.Jar
	routes    websession.Routes
	secure    bool
	origin    string // scheme://host[:port] of AppURI
	redirect  string // AppURI + CallbackPath
	store     SessionStore
	verifier  sync.Once
	idV       *oidc.IDTokenVerifier
	oauth     *oauth2.Config
	refreshMu sync.Mutex
	refreshes map[string]*refreshCall
}

// NewBrowser checks cfg and returns a Browser. It does not contact the
// provider; see [Browser.Discover].
func NewBrowser(cfg BrowserConfig) (*Browser, error) {
	if cfg.ClientID == "" {
		return nil, errors.New("authn: browser: ClientID is required")
	}
	app, err := websession.ParseApp("authn: browser", cfg.AppURI, cfg.InsecureCookies)
	if err != nil {
		return nil, err
	}
	b := &Browser{cfg: cfg, logger: cfg.Logger, now: cfg.Now, refreshes: map[string]*refreshCall{}}
	b.secure, b.origin = app.Secure, app.Origin
	b.cfg.LoginPath = cmp.Or(b.cfg.LoginPath, DefaultLoginPath)
	b.cfg.CallbackPath = cmp.Or(b.cfg.CallbackPath, DefaultCallbackPath)
	b.cfg.LogoutPath = cmp.Or(b.cfg.LogoutPath, DefaultLogoutPath)
	for _, p := range []string{b.cfg.LoginPath, b.cfg.CallbackPath, b.cfg.LogoutPath} {
		if _, ok := websession.SafeReturnPath(p); !ok {
			return nil, fmt.Errorf("authn: browser: route %q is not an absolute path", p)
		}
	}
	b.redirect = app.URL.String() + b.cfg.CallbackPath
	b.routes = websession.Routes{b.cfg.LoginPath: b.handleLogin, b.cfg.CallbackPath: b.handleCallback,
		b.cfg.LogoutPath: b.handleLogout}
	if len(b.routes) != 3 {
		return nil, errors.New("authn: browser: LoginPath, CallbackPath and LogoutPath must differ")
	}
	if b.cfg.CookieName == "" {
		b.cfg.CookieName = "regoguard"
		if b.secure {
			b.cfg.CookieName = "__Host-regoguard"
		}
	}
	if !contains(b.cfg.Scopes, oidc.ScopeOpenID) {
		if len(b.cfg.Scopes) == 0 {
			b.cfg.Scopes = []string{"profile", "email"}
		}
		b.cfg.Scopes = append([]string{oidc.ScopeOpenID}, b.cfg.Scopes...)
	}
	if b.cfg.SessionLifetime <= 0 {
		b.cfg.SessionLifetime = websession.DefaultLifetime
	}
	if b.cfg.LoginTimeout <= 0 {
		b.cfg.LoginTimeout = websession.DefaultLoginTimeout
	}
	if b.cfg.MaxCookies <= 0 {
		b.cfg.MaxCookies = websession.DefaultMaxCookies
	}
	if b.cfg.ClockSkew == 0 {
		b.cfg.ClockSkew = 30 * time.Second
	}
	if b.cfg.Algorithms, err = checkAlgorithms(cfg.Algorithms); err != nil {
		return nil, err
	}
	if b.now == nil {
		b.now = time.Now
	}
	if b.logger == nil {
		b.logger = slog.Default()
	}
	if b.session, err = websession.NewCodec(cfg.CookieKeys, "session"); err != nil {
		return nil, fmt.Errorf("authn: browser: %w", err)
	}
	if b.login, err = websession.NewCodec(cfg.CookieKeys, "login"); err != nil {
		return nil, fmt.Errorf("authn: browser: %w", err)
	}
	b.jar = websession.Jar{Name: b.cfg.CookieName, Max: b.cfg.MaxCookies, Secure: b.secure}
	b.store = cfg.Store
	if b.store == nil {
		b.store = NewMemorySessionStore(MemorySessionStoreConfig{Now: b.now})
	}
	if b.disc, err = newDiscovery(cfg.Issuer, cfg.HTTPClient, b.now); err != nil {
		return nil, err
	}
	return b, nil
}

// Discover fetches the provider's discovery document now.
func (b *Browser) Discover(ctx context.Context) error {
	_, err := b.disc.get(ctx)
	return err
}

func (b *Browser) provider(ctx context.Context) (*oidc.Provider, *oauth2.Config, error) {
	p, err := b.disc.get(ctx)
	if err != nil {
		return nil, nil, err
	}
	b.verifier.Do(func() {
		skew := b.cfg.ClockSkew
		b.idV = p.Verifier(&oidc.Config{ClientID: b.cfg.ClientID, SupportedSigningAlgs: b.cfg.Algorithms,
			Now: func() time.Time { return b.now().Add(-skew) }})
		// One Config for the process: oauth2 remembers in it which client
		// authentication style (header or form) the token endpoint took.
		b.oauth = &oauth2.Config{ClientID: b.cfg.ClientID, ClientSecret: b.cfg.ClientSecret,
			Endpoint: p.Endpoint(), RedirectURL: b.redirect, Scopes: b.cfg.Scopes}
	})
	return p, b.oauth, nil
}

// Authenticate implements [Authenticator]. Behind [Browser.Middleware] it
// returns the identity of the (possibly refreshed) session; otherwise it reads
// the session cookie itself, without refreshing. No cookie is
// ErrNoCredential; a tampered, expired or logged-out session is a
// [CredentialError] (the middleware drops such cookies first, so browsers are
// sent to log in instead).
func (b *Browser) Authenticate(r *http.Request) (*Identity, error) {
	if v, ok := websession.Loaded(r.Context(), b); ok {
		l := v.(*loadedSession)
		if l.err != nil {
			return nil, l.err
		}
		return l.s.identity(), nil
	}
	s, err := b.loadSession(r)
	if errors.Is(err, ErrNoCredential) {
		return nil, ErrNoCredential
	}
	if err != nil {
		return nil, invalid(MethodOIDC, DefaultChallenge, err)
	}
	return s.identity(), nil
}

// Challenge implements [Challenger]: a GET or HEAD that accepts text/html is
// redirected to the provider to log in and will come back to the same path and
// query (r.URL's, as for SAML: mount the guard outside any http.StripPrefix). Other requests are left to the middleware (401, WWW-Authenticate:
// Bearer).
func (b *Browser) Challenge(w http.ResponseWriter, r *http.Request) bool {
	if !websession.WantsHTML(r) {
		return false
	}
	b.startLogin(w, r, websession.ReturnTarget(r))
	return true
}

// Middleware serves the login, callback and logout routes and, for every
// other request, loads the session: it refreshes an expired ID token with the
// refresh token, drops tampered, expired or logged-out session cookies (the
// request continues unauthenticated, so the authorization middleware
// challenges it), removes the session cookies from the request passed on (the
// application never sees them) and makes the session available to
// [Browser.Authenticate].
func (b *Browser) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b.routes.Serve(w, r) {
			return
		}
		s, err := b.loadSession(r)
		if errors.Is(err, errSessionExpired) {
			s, err = b.refresh(r.Context(), s)
			if err == nil {
				err = b.writeSession(w, r, s)
			}
			if err != nil {
				b.logger.InfoContext(r.Context(), "session refresh failed", "error", err)
			}
		}
		switch {
		case err == nil:
			r = b.jar.Strip(websession.WithLoaded(r, b, &loadedSession{s: s}))
		case errors.Is(err, ErrNoCredential):
		case errors.Is(err, ErrUnavailable):
			// Neither good nor bad yet (the provider or the session store
			// cannot answer): keep the cookie and refuse with 503, never
			// as if there were no session.
			r = b.jar.Strip(websession.WithLoaded(r, b, &loadedSession{err: err}))
		default:
			b.logger.DebugContext(r.Context(), "session cookie dropped", "error", err)
			b.clearSession(w, r)
			r = b.jar.Strip(r)
		}
		next.ServeHTTP(w, r)
	})
}

// loadedSession is what Middleware found for a request: a session, or an
// error Authenticate returns.
type loadedSession struct {
	s   *session
	err error
}

// ServeHTTP serves only the browser-flow routes and answers 404 elsewhere;
// prefer [Browser.Middleware], which also refreshes sessions.
func (b *Browser) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !b.routes.Serve(w, r) {
		http.NotFound(w, r)
	}
}
