package authn

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
)

// Default routes of the browser flow.
const (
	DefaultLoginPath    = "/oauth2/login"
	DefaultCallbackPath = "/oauth2/callback"
	DefaultLogoutPath   = "/oauth2/logout"
)

// BrowserConfig configures a [Browser] authenticator.
type BrowserConfig struct {
	// Issuer is the OpenID Provider's issuer URL or the full URL of its
	// discovery document (OIDC_WELL_KNOWN).
	Issuer string
	// ClientID and ClientSecret identify this application at the provider
	// (OIDC_CLIENT_ID, OIDC_CLIENT_SECRET). The secret may be empty for a
	// public client; PKCE is always used.
	ClientID     string
	ClientSecret string
	// AppURI is the external base URL of the application (APP_URI), e.g.
	// "https://app.example.com". The redirect URI registered at the provider
	// is AppURI + CallbackPath.
	AppURI string
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
	// CookieName names the session cookie. Default "__Host-regoguard" (or
	// "regoguard" with InsecureCookies).
	CookieName string
	// CookieKeys are the secrets sealing cookies, each at least 32 bytes. The
	// first seals new cookies, all open them (key rotation). Required.
	CookieKeys [][]byte
	// InsecureCookies drops the Secure attribute. Allowed only when AppURI is
	// plain http on localhost, 127.0.0.1 or [::1] (development and tests).
	InsecureCookies bool
	// SessionLifetime bounds a session from login, refreshes included.
	// Default 12h.
	SessionLifetime time.Duration
	// LoginTimeout bounds the time between the redirect to the provider and
	// the callback. Default 10m.
	LoginTimeout time.Duration
	// MaxCookies is how many cookies a large session may be split across
	// (name, name.1, ...). Default 4. Beyond it the session is trimmed (ID
	// token, then refresh token dropped) and, if still too large, the login
	// fails with a clear error page.
	MaxCookies int
	// Algorithms and ClockSkew as in [BearerConfig].
	Algorithms []string
	ClockSkew  time.Duration
	// Denylist records consumed logins and revoked sessions. Default: in
	// memory (one process).
	Denylist Denylist
	// HTTPClient talks to the provider. Default: 10s timeout.
	HTTPClient *http.Client
	// Logger. Default slog.Default(). Tokens and cookies are never logged.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
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
// the browser is sent to log in again. Mount the middleware outside the
// authorization middleware:
//
//	handler := browser.Middleware(authzMiddleware(app))
type Browser struct {
	cfg       BrowserConfig
	disc      *discovery
	logger    *slog.Logger
	now       func() time.Time
	session   *cookieCodec
	login     *cookieCodec
	secure    bool
	origin    string // scheme://host[:port] of AppURI
	redirect  string // AppURI + CallbackPath
	deny      Denylist
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
	app, err := url.Parse(strings.TrimSuffix(cfg.AppURI, "/"))
	if err != nil || app.Host == "" || (app.Scheme != "https" && app.Scheme != "http") {
		return nil, fmt.Errorf("authn: browser: AppURI %q is not an absolute http(s) URL", cfg.AppURI)
	}
	b := &Browser{cfg: cfg, logger: cfg.Logger, now: cfg.Now, refreshes: map[string]*refreshCall{}}
	b.secure = true
	if app.Scheme == "http" {
		if !isLoopbackHost(app.Hostname()) {
			return nil, fmt.Errorf("authn: browser: AppURI %q is plain http on a non-local host; use https", cfg.AppURI)
		}
		if !cfg.InsecureCookies {
			return nil, errors.New("authn: browser: AppURI is plain http: set InsecureCookies (allowed for localhost only)")
		}
		b.secure = false
	} else if cfg.InsecureCookies {
		return nil, errors.New("authn: browser: InsecureCookies is allowed only for a plain-http localhost AppURI")
	}
	b.origin = app.Scheme + "://" + app.Host
	defaults(&b.cfg.LoginPath, DefaultLoginPath)
	defaults(&b.cfg.CallbackPath, DefaultCallbackPath)
	defaults(&b.cfg.LogoutPath, DefaultLogoutPath)
	for _, p := range []string{b.cfg.LoginPath, b.cfg.CallbackPath, b.cfg.LogoutPath} {
		if _, ok := safeReturnPath(p); !ok {
			return nil, fmt.Errorf("authn: browser: route %q is not an absolute path", p)
		}
	}
	b.redirect = strings.TrimSuffix(app.String(), "/") + b.cfg.CallbackPath
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
		b.cfg.SessionLifetime = 12 * time.Hour
	}
	if b.cfg.LoginTimeout <= 0 {
		b.cfg.LoginTimeout = 10 * time.Minute
	}
	if b.cfg.MaxCookies <= 0 {
		b.cfg.MaxCookies = 4
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
	if b.session, err = newCookieCodec(cfg.CookieKeys, "session"); err != nil {
		return nil, err
	}
	if b.login, err = newCookieCodec(cfg.CookieKeys, "login"); err != nil {
		return nil, err
	}
	b.deny = cfg.Denylist
	if b.deny == nil {
		b.deny = NewMemoryDenylist(0, b.now)
	}
	if b.disc, err = newDiscovery(cfg.Issuer, cfg.HTTPClient, b.now); err != nil {
		return nil, err
	}
	return b, nil
}

func defaults(s *string, d string) {
	if *s == "" {
		*s = d
	}
}

func isLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// Discover fetches the provider's discovery document now.
func (b *Browser) Discover(ctx context.Context) error {
	_, err := b.disc.get(ctx)
	return err
}

// Routes returns the paths the browser flow serves: login, callback, logout.
func (b *Browser) Routes() []string {
	return []string{b.cfg.LoginPath, b.cfg.CallbackPath, b.cfg.LogoutPath}
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

// session is what the session cookie holds. When the raw ID token is kept,
// the claims are not stored a second time: they are read back from the token,
// which was verified at login and is protected by the cookie's AEAD since.
type session struct {
	ID           string         `json:"sid"`
	Subject      string         `json:"sub"`
	Claims       map[string]any `json:"c"`
	IDToken      string         `json:"idt,omitempty"`
	RefreshToken string         `json:"rt,omitempty"`
	Expiry       int64          `json:"exp"` // ID token expiry
	End          int64          `json:"end"` // absolute end of the session
}

func (s *session) identity() *Identity {
	return &Identity{Subject: s.Subject, Method: MethodOIDC, Claims: cloneClaims(s.Claims), Token: s.IDToken}
}

// claimsFromIDToken reads the claims of an ID token that was verified when
// the session was created.
func claimsFromIDToken(raw string) (map[string]any, error) {
	if raw == "" {
		return nil, errors.New("session cookie has no claims")
	}
	jws, err := jose.ParseSigned(raw, toJOSE(defaultAlgorithms))
	if err != nil {
		return nil, fmt.Errorf("session ID token: %w", err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		return nil, fmt.Errorf("session ID token claims: %w", err)
	}
	return claims, nil
}

// sessionKey carries the session that Middleware loaded, per Browser.
type sessionKey struct{ b *Browser }

// errSessionExpired means the session's ID token expired (a refresh may help).
var errSessionExpired = errors.New("session expired")

// loadSession reads and checks the session cookie. ErrNoCredential: no
// cookie. errSessionExpired (with the session): the ID token expired.
func (b *Browser) loadSession(r *http.Request) (*session, error) {
	raw := readChunks(r, b.cfg.CookieName, b.cfg.MaxCookies)
	if raw == "" {
		return nil, ErrNoCredential
	}
	pt, err := b.session.open(b.cfg.CookieName, raw)
	if err != nil {
		return nil, err
	}
	var s session
	if err := json.Unmarshal(pt, &s); err != nil || s.ID == "" || s.Subject == "" {
		return nil, errors.New("session cookie is malformed")
	}
	if s.Claims == nil {
		if s.Claims, err = claimsFromIDToken(s.IDToken); err != nil {
			return nil, err
		}
	}
	now := b.now()
	if now.Unix() >= s.End {
		return nil, errors.New("session lifetime is over")
	}
	revoked, err := b.deny.Contains(r.Context(), "sid:"+s.ID)
	if err != nil {
		return nil, fmt.Errorf("denylist: %w", err)
	}
	if revoked {
		return nil, errors.New("session was logged out")
	}
	if now.Add(-b.cfg.ClockSkew).Unix() >= s.Expiry {
		return &s, errSessionExpired
	}
	return &s, nil
}

// Authenticate implements [Authenticator]. Behind [Browser.Middleware] it
// returns the identity of the (possibly refreshed) session; otherwise it reads
// the session cookie itself, without refreshing. No cookie is
// ErrNoCredential; a tampered, expired or logged-out session is a
// [CredentialError] (the middleware drops such cookies first, so browsers are
// sent to log in instead).
func (b *Browser) Authenticate(r *http.Request) (*Identity, error) {
	if s, ok := r.Context().Value(sessionKey{b}).(*session); ok {
		return s.identity(), nil
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

// wantsHTML reports whether r is a browser navigation that can follow a
// redirect to a login page.
func wantsHTML(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("X-Requested-With") != "" {
		return false
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if mt != "text/html" && mt != "application/xhtml+xml" {
			continue
		}
		if q := strings.ReplaceAll(params, " ", ""); strings.Contains(q, "q=0") && !strings.Contains(q, "q=0.") {
			continue
		}
		return true
	}
	return false
}

// Challenge implements [Challenger]: a GET or HEAD that accepts text/html is
// redirected to the provider to log in and will come back to the same path and
// query. Other requests are left to the middleware (401, WWW-Authenticate:
// Bearer).
func (b *Browser) Challenge(w http.ResponseWriter, r *http.Request) bool {
	if !wantsHTML(r) {
		return false
	}
	// r.RequestURI is the target as the client sent it, before any
	// http.StripPrefix; fall back to r.URL for absolute-form targets.
	target := r.RequestURI
	if !strings.HasPrefix(target, "/") {
		target = r.URL.RequestURI()
	}
	b.startLogin(w, r, target)
	return true
}

// login is what a login cookie holds, for one login attempt.
type loginState struct {
	State    string `json:"st"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Return   string `json:"rt"`
	Expiry   int64  `json:"exp"`
}

// loginCookieName is the login cookie of the attempt with this state. Each
// attempt has its own cookie, so two tabs logging in do not clash.
func (b *Browser) loginCookieName(state string) string {
	sum := sha256.Sum256([]byte(state))
	prefix := "regoguard_login_"
	if b.secure {
		prefix = "__Secure-" + prefix
	}
	return prefix + hex.EncodeToString(sum[:8])
}

func (b *Browser) startLogin(w http.ResponseWriter, r *http.Request, returnTo string) {
	rt, ok := safeReturnPath(returnTo)
	if !ok || b.isRoute(rt) {
		rt = "/"
	}
	_, conf, err := b.provider(r.Context())
	if err != nil {
		b.logger.WarnContext(r.Context(), "login: identity provider unavailable", "error", err)
		b.errorPage(w, http.StatusServiceUnavailable, "The sign-in service is unavailable",
			"The identity provider could not be reached. Please try again in a moment.", rt)
		return
	}
	ls := loginState{State: randomToken(32), Nonce: randomToken(32), Verifier: oauth2.GenerateVerifier(),
		Return: rt, Expiry: b.now().Add(b.cfg.LoginTimeout).Unix()}
	pt, _ := json.Marshal(ls)
	name := b.loginCookieName(ls.State)
	http.SetCookie(w, &http.Cookie{Name: name, Value: b.login.seal(name, pt), Path: b.cfg.CallbackPath,
		MaxAge: int(b.cfg.LoginTimeout.Seconds()), HttpOnly: true, Secure: b.secure, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, conf.AuthCodeURL(ls.State, oidc.Nonce(ls.Nonce), oauth2.S256ChallengeOption(ls.Verifier)), http.StatusFound)
}

func (b *Browser) isRoute(p string) bool {
	path, _, _ := strings.Cut(p, "?")
	return path == b.cfg.LoginPath || path == b.cfg.CallbackPath || path == b.cfg.LogoutPath
}

// safeReturnPath accepts only same-origin, absolute paths (with an optional
// query): no scheme, no host, no "//" or "/\" (which browsers read as another
// host), no control characters (browsers drop tabs and newlines).
func safeReturnPath(s string) (string, bool) {
	if s == "" || s[0] != '/' || len(s) > 4096 {
		return "", false
	}
	if strings.HasPrefix(s, "//") || strings.ContainsRune(s, '\\') {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return "", false
		}
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" || !strings.HasPrefix(u.Path, "/") {
		return "", false
	}
	return s, true
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
		if b.serveRoute(w, r) {
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
			r = r.WithContext(context.WithValue(r.Context(), sessionKey{b}, s))
			r = withoutCookies(r, b.isSessionCookie)
		case errors.Is(err, ErrNoCredential):
		default:
			if !errors.Is(err, ErrUnavailable) {
				b.logger.DebugContext(r.Context(), "session cookie dropped", "error", err)
				b.clearSession(w, r)
			}
			r = withoutCookies(r, b.isSessionCookie)
		}
		next.ServeHTTP(w, r)
	})
}

// ServeHTTP serves only the browser-flow routes and answers 404 elsewhere;
// prefer [Browser.Middleware], which also refreshes sessions.
func (b *Browser) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !b.serveRoute(w, r) {
		http.NotFound(w, r)
	}
}

func (b *Browser) serveRoute(w http.ResponseWriter, r *http.Request) bool {
	switch r.URL.Path {
	case b.cfg.LoginPath:
		b.handleLogin(w, r)
	case b.cfg.CallbackPath:
		b.handleCallback(w, r)
	case b.cfg.LogoutPath:
		b.handleLogout(w, r)
	default:
		return false
	}
	return true
}

func (b *Browser) isSessionCookie(name string) bool {
	base, _, _ := strings.Cut(name, ".")
	return base == b.cfg.CookieName
}

// withoutCookies returns r without the cookies drop selects.
func withoutCookies(r *http.Request, drop func(string) bool) *http.Request {
	cookies := r.Cookies()
	keep := cookies[:0]
	changed := false
	for _, c := range cookies {
		if drop(c.Name) {
			changed = true
			continue
		}
		keep = append(keep, c)
	}
	if !changed {
		return r
	}
	r2 := r.Clone(r.Context())
	r2.Header.Del("Cookie")
	for _, c := range keep {
		r2.AddCookie(c)
	}
	return r2
}

func (b *Browser) handleLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rd := r.URL.Query().Get("rd")
	if rd == "" {
		rd = "/"
	}
	if _, ok := safeReturnPath(rd); !ok {
		b.errorPage(w, http.StatusBadRequest, "Invalid return address",
			"Sign-in can only return to a page of this site.", "/")
		return
	}
	b.startLogin(w, r, rd)
}

func (b *Browser) handleCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", "GET")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	var ls loginState
	fail := func(status int, title, msg string, err error) {
		b.logger.InfoContext(ctx, "login callback refused", "reason", title, "error", err)
		retry := ls.Return
		if retry == "" {
			retry = "/"
		}
		b.errorPage(w, status, title, msg, retry)
	}
	if state == "" || len(state) > 512 {
		fail(http.StatusBadRequest, "Invalid sign-in response", "The sign-in response has no valid state.", nil)
		return
	}
	name := b.loginCookieName(state)
	c, err := r.Cookie(name)
	// The login cookie is consumed whatever happens next.
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: b.cfg.CallbackPath, MaxAge: -1,
		HttpOnly: true, Secure: b.secure, SameSite: http.SameSiteLaxMode})
	if err != nil {
		fail(http.StatusBadRequest, "Sign-in expired", "This sign-in attempt has expired or was already used. Please try again.", err)
		return
	}
	pt, err := b.login.open(name, c.Value)
	if err == nil {
		err = json.Unmarshal(pt, &ls)
	}
	if err != nil {
		fail(http.StatusBadRequest, "Invalid sign-in response", "The sign-in attempt could not be verified.", err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(ls.State), []byte(state)) != 1 {
		fail(http.StatusBadRequest, "Invalid sign-in response", "The sign-in response does not match this attempt.", errors.New("state mismatch"))
		return
	}
	if b.now().Unix() >= ls.Expiry {
		fail(http.StatusBadRequest, "Sign-in expired", "This sign-in attempt has expired. Please try again.", nil)
		return
	}
	sum := sha256.Sum256([]byte(ls.State))
	first, err := b.deny.Add(ctx, "login:"+hex.EncodeToString(sum[:]), time.Unix(ls.Expiry, 0))
	if err != nil || !first {
		fail(http.StatusBadRequest, "Sign-in expired", "This sign-in attempt was already used. Please try again.", err)
		return
	}
	if e := q.Get("error"); e != "" {
		fail(http.StatusForbidden, "Sign-in was not completed", "The identity provider answered: "+safeErrorCode(e)+".", nil)
		return
	}
	code := q.Get("code")
	if code == "" {
		fail(http.StatusBadRequest, "Invalid sign-in response", "The sign-in response has no code.", nil)
		return
	}
	_, conf, err := b.provider(ctx)
	if err != nil {
		fail(http.StatusServiceUnavailable, "The sign-in service is unavailable", "The identity provider could not be reached. Please try again in a moment.", err)
		return
	}
	tok, err := conf.Exchange(b.disc.clientContext(ctx), code, oauth2.VerifierOption(ls.Verifier))
	if err != nil {
		fail(http.StatusBadGateway, "Sign-in failed", "The identity provider did not confirm the sign-in. Please try again.", err)
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		fail(http.StatusBadGateway, "Sign-in failed", "The identity provider returned no ID token.", nil)
		return
	}
	idt, err := b.idV.Verify(ctx, rawID)
	if err != nil {
		fail(http.StatusBadGateway, "Sign-in failed", "The identity provider's ID token is not valid.", err)
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(ls.Nonce)) != 1 {
		fail(http.StatusBadRequest, "Invalid sign-in response", "The sign-in response does not match this attempt.", errors.New("nonce mismatch"))
		return
	}
	var azp struct {
		AuthorizedParty string `json:"azp"`
	}
	if err := idt.Claims(&azp); err != nil || (azp.AuthorizedParty == "" && len(idt.Audience) > 1) ||
		(azp.AuthorizedParty != "" && azp.AuthorizedParty != b.cfg.ClientID) {
		fail(http.StatusBadGateway, "Sign-in failed", "The ID token was issued to another application.", errors.New("azp is not this client"))
		return
	}
	if idt.AccessTokenHash != "" && tok.AccessToken != "" {
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			fail(http.StatusBadGateway, "Sign-in failed", "The identity provider's tokens do not match.", err)
			return
		}
	}
	s, err := b.newSession(idt, rawID, tok.RefreshToken)
	if err != nil {
		fail(http.StatusBadGateway, "Sign-in failed", "The identity provider's ID token could not be read.", err)
		return
	}
	if err := b.writeSession(w, r, s); err != nil {
		fail(http.StatusInternalServerError, "Sign-in failed", "Your account information is too large for a session cookie. Please contact the administrator.", err)
		return
	}
	b.logger.InfoContext(ctx, "login", "sub", s.Subject)
	rt, ok := safeReturnPath(ls.Return)
	if !ok {
		rt = "/"
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, rt, http.StatusSeeOther)
}

// safeErrorCode keeps an OAuth error code printable in a page and a log.
func safeErrorCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	return strings.Map(func(r rune) rune {
		if r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9') {
			return r
		}
		return -1
	}, s)
}

func (b *Browser) newSession(idt *oidc.IDToken, rawID, refreshToken string) (*session, error) {
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	now := b.now()
	return &session{ID: randomToken(16), Subject: idt.Subject, Claims: claims, IDToken: rawID,
		RefreshToken: refreshToken, Expiry: idt.Expiry.Unix(), End: now.Add(b.cfg.SessionLifetime).Unix()}, nil
}

// writeSession seals s into as many cookies as needed, trimming the ID token
// and then the refresh token when it does not fit.
func (b *Browser) writeSession(w http.ResponseWriter, r *http.Request, s *session) error {
	trimmed := *s
	var chunks []string
	for {
		wire := trimmed
		if wire.IDToken != "" {
			wire.Claims = nil // the ID token carries them; see claimsFromIDToken
		}
		pt, err := json.Marshal(&wire)
		if err != nil {
			return err
		}
		chunks, err = splitChunks(b.session.seal(b.cfg.CookieName, pt), b.cfg.MaxCookies)
		if err == nil {
			break
		}
		switch {
		case trimmed.IDToken != "":
			b.logger.WarnContext(r.Context(), "session too large: dropping the raw ID token (no id_token_hint at logout)", "sub", s.Subject)
			trimmed.IDToken = ""
		case trimmed.RefreshToken != "":
			b.logger.WarnContext(r.Context(), "session too large: dropping the refresh token (session ends when the ID token expires)", "sub", s.Subject)
			trimmed.RefreshToken = ""
		default:
			return err
		}
	}
	maxAge := int(s.End - b.now().Unix())
	for i, v := range chunks {
		http.SetCookie(w, b.sessionCookie(chunkName(b.cfg.CookieName, i), v, maxAge))
	}
	for i := len(chunks); i < b.cfg.MaxCookies; i++ {
		if _, err := r.Cookie(chunkName(b.cfg.CookieName, i)); err == nil {
			http.SetCookie(w, b.sessionCookie(chunkName(b.cfg.CookieName, i), "", -1))
		}
	}
	return nil
}

func (b *Browser) sessionCookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: b.secure, SameSite: http.SameSiteLaxMode}
}

// clearSession deletes every session cookie the browser sent.
func (b *Browser) clearSession(w http.ResponseWriter, r *http.Request) {
	for _, c := range r.Cookies() {
		if b.isSessionCookie(c.Name) {
			http.SetCookie(w, b.sessionCookie(c.Name, "", -1))
		}
	}
}

// refreshCall lets concurrent requests of one session share one refresh, so
// that a provider rotating refresh tokens does not see the old one twice.
type refreshCall struct {
	done chan struct{}
	s    *session
	err  error
	at   time.Time
}

// refreshReuse is how long a refreshed session is handed to requests that
// still carry the previous cookie.
const refreshReuse = 30 * time.Second

func (b *Browser) refresh(ctx context.Context, s *session) (*session, error) {
	if s.RefreshToken == "" {
		return nil, errSessionExpired
	}
	b.refreshMu.Lock()
	for id, c := range b.refreshes {
		select {
		case <-c.done:
			if b.now().Sub(c.at) > refreshReuse {
				delete(b.refreshes, id)
			}
		default:
		}
	}
	key := s.ID + "\x00" + s.RefreshToken
	sum := sha256.Sum256([]byte(key))
	id := hex.EncodeToString(sum[:])
	if c, ok := b.refreshes[id]; ok {
		b.refreshMu.Unlock()
		<-c.done
		return c.s, c.err
	}
	c := &refreshCall{done: make(chan struct{})}
	b.refreshes[id] = c
	b.refreshMu.Unlock()

	c.s, c.err = b.doRefresh(ctx, s)
	c.at = b.now()
	close(c.done)
	return c.s, c.err
}

func (b *Browser) doRefresh(ctx context.Context, s *session) (*session, error) {
	_, conf, err := b.provider(ctx)
	if err != nil {
		return nil, err
	}
	ctx = b.disc.clientContext(context.WithoutCancel(ctx))
	tok, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: s.RefreshToken, Expiry: time.Unix(1, 0)}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if !errors.As(err, &re) {
			return nil, fmt.Errorf("%w: refresh: %w", ErrUnavailable, err)
		}
		return nil, fmt.Errorf("refresh refused: %s", safeErrorCode(re.ErrorCode))
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return nil, errors.New("refresh returned no ID token")
	}
	idt, err := b.idV.Verify(ctx, rawID)
	if err != nil {
		return nil, fmt.Errorf("refreshed ID token: %w", err)
	}
	if idt.Subject != s.Subject {
		return nil, errors.New("refreshed ID token names another subject")
	}
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	ns := *s
	ns.Claims, ns.IDToken, ns.Expiry = claims, rawID, idt.Expiry.Unix()
	if tok.RefreshToken != "" {
		ns.RefreshToken = tok.RefreshToken
	}
	return &ns, nil
}

// handleLogout: GET shows a confirmation form (a link or an image cannot log
// anybody out); POST, from this origin only, revokes the session, clears its
// cookies and continues to the provider's end_session_endpoint when it has
// one.
func (b *Browser) handleLogout(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		b.page(w, http.StatusOK, "Sign out", "Do you want to sign out?",
			`<form method="post" action="`+htmlEscape(b.cfg.LogoutPath)+`"><button id="logout" type="submit">Sign out</button></form>`)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !b.sameOrigin(r) {
		b.errorPage(w, http.StatusForbidden, "Sign-out refused", "Sign-out must be requested from this site.", "/")
		return
	}
	var hint string
	if s, err := b.loadSession(r); err == nil || errors.Is(err, errSessionExpired) {
		hint = s.IDToken
		if _, err := b.deny.Add(r.Context(), "sid:"+s.ID, time.Unix(s.End, 0)); err != nil {
			b.logger.WarnContext(r.Context(), "logout: could not revoke the session", "error", err)
		}
		b.logger.InfoContext(r.Context(), "logout", "sub", s.Subject)
	}
	b.clearSession(w, r)
	w.Header().Set("Cache-Control", "no-store")
	target := b.cfg.PostLogoutRedirectURI
	if target == "" {
		target = "/"
	}
	if end := b.disc.endSession(); end != "" {
		if u, err := url.Parse(end); err == nil {
			q := u.Query()
			q.Set("client_id", b.cfg.ClientID)
			if hint != "" {
				q.Set("id_token_hint", hint)
			}
			if b.cfg.PostLogoutRedirectURI != "" {
				q.Set("post_logout_redirect_uri", b.cfg.PostLogoutRedirectURI)
			}
			u.RawQuery = q.Encode()
			target = u.String()
		}
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// sameOrigin checks a state-changing request's Origin (or Sec-Fetch-Site).
// Requests without either header come from non-browser clients, which carry
// no ambient credentials worth forging.
func (b *Browser) sameOrigin(r *http.Request) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return o == b.origin
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		return s == "same-origin" || s == "none"
	}
	return true
}
