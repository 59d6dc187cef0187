// Package saml is a SAML 2.0 service provider for browsers, built on
// github.com/crewjam/saml: an [authn.Authenticator] whose identities come from
// signed assertions of one identity provider.
//
// [New] takes a [Config]: the IdP's metadata ([ReadMetadata] fetches it), this
// service provider's key pair ([LoadKeyPair]) and cookie keys. Give the
// [ServiceProvider] to an authz middleware as its Authenticator, alone or in
// an authn.Chain: the middleware serves its metadata, assertion consumer
// service and logout routes itself (authn.SessionRoutes). Replicas share used
// assertions and logouts through Config.Store (package authn/redisstore).
//
// It lives in its own package so that programs that do not use SAML link no
// XML-signature code: importing authn, authz and policy pulls in neither
// crewjam/saml nor goxmldsig nor etree.
package saml

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authn/internal/websession"
)

// Method names identities established by a SAML assertion
// ([authn.MethodSAML]).
const Method = authn.MethodSAML

// Default routes of the service provider.
const (
	DefaultMetadataPath = "/saml/metadata"
	DefaultACSPath      = "/saml/acs"
	DefaultLogoutPath   = "/saml/logout"
)

// Config configures a [ServiceProvider].
type Config struct {
	// AppURI is the external base URL of the application, e.g.
	// "https://app.example.com". The service provider's routes are below it.
	AppURI string
	// EntityID names this service provider at the IdP. Default: the URL of
	// its metadata, AppURI + MetadataPath.
	EntityID string
	// IDPMetadata is the identity provider's metadata document (an
	// EntityDescriptor, or an EntitiesDescriptor holding one), as its
	// administrator publishes it. Its signing certificates are the only ones
	// assertions are verified with. Required.
	IDPMetadata []byte
	// Key and Certificate are this service provider's key pair: it signs
	// authentication requests, decrypts encrypted assertions (RSA keys) and
	// is published in the metadata. Required.
	Key         crypto.Signer
	Certificate *x509.Certificate
	// SignRequests signs authentication requests (HTTP-Redirect binding
	// signatures) and says so in the metadata, for IdPs that require it.
	// Off by default: what protects the login is the signed assertion, and
	// some IdPs (crewjam/saml's samlidp among them) lose the signature when
	// their login form re-posts the request.
	SignRequests bool
	// MetadataPath serves this service provider's metadata, to upload to the
	// IdP. Default /saml/metadata.
	MetadataPath string
	// ACSPath is the assertion consumer service: the IdP posts its
	// response there (HTTP-POST binding). Default /saml/acs.
	ACSPath string
	// LogoutPath ends the local session: POST (GET shows a confirmation
	// form). It does not log out of the IdP. Default /saml/logout.
	LogoutPath string
	// CookieName names the session cookie. Default "__Host-regoguard-saml"
	// (or "regoguard-saml" with InsecureCookies).
	CookieName string
	// CookieKeys seal the session and login cookies, each at least 32
	// bytes; the first seals, all open (rotation). Required.
	CookieKeys [][]byte
	// InsecureCookies drops the Secure attribute. Allowed only when AppURI
	// is plain http on localhost, 127.0.0.1 or [::1].
	InsecureCookies bool
	// SessionLifetime bounds a session; the assertion's SessionNotOnOrAfter
	// bounds it further. Default 12h (as for the OIDC browser flow).
	SessionLifetime time.Duration
	// MaxCookies is how many cookies a session may be split across (name,
	// name.1, ...). Default 4. A session that does not fit fails the login
	// with a clear error page.
	MaxCookies int
	// LoginTimeout bounds the time between the redirect to the IdP and its
	// response. Default 10m.
	LoginTimeout time.Duration
	// FastAPIOPAClaims gives the identity fastapi-opa's SAML claims
	// (samlUserdata, samlNameId, samlNameIdFormat, samlNameIdNameQualifier,
	// samlNameIdSPNameQualifier, samlSessionIndex) instead of one claim per
	// attribute, so that a fastapi-opa SAML policy runs unchanged under the
	// fastapi-opa input layout.
	FastAPIOPAClaims bool
	// Store records used assertions (replay protection) and sessions
	// revoked by logout. Default: an [authn.NewMemorySessionStore] (one
	// process); replicas share one.
	Store authn.SessionStore
	// Logger. Default slog.Default(). Assertions and cookies are never logged.
	Logger *slog.Logger
	// Now is the clock of sessions. Default time.Now.
	Now func() time.Time
}

// ServiceProvider is a SAML 2.0 service provider for browsers, built on
// github.com/crewjam/saml: it sends users to the identity provider
// (HTTP-Redirect binding), accepts the IdP's response on its
// assertion consumer service (HTTP-POST binding) only when it answers a
// request this service provider made, its assertion is signed with a key of
// the IdP's metadata, meant for this service provider, current and not seen
// before, and keeps the user's NameID and attributes in an encrypted session
// cookie.
//
// It is an [authn.Authenticator] (session cookie → identity whose claims are
// the assertion's attributes), an [authn.Challenger] (redirects GET requests
// that accept text/html to the IdP), and serves its routes through
// [ServiceProvider.Middleware] ([authn.SessionRoutes]): a middleware of
// package authz whose authenticator is (or chains) a ServiceProvider mounts
// it itself; elsewhere mount it outside whatever authenticates.
type ServiceProvider struct {
	cfg      Config
	sp       *saml.ServiceProvider
	sessions *websession.Codec
	logins   *websession.Codec
	jar      websession.Jar
	routes   websession.Routes
	secure   bool
	origin   string
	logger   *slog.Logger
}

// New checks cfg and returns a service provider.
func New(cfg Config) (*ServiceProvider, error) {
	s := &ServiceProvider{cfg: cfg}
	if err := s.setDefaults(); err != nil {
		return nil, err
	}
	var err error
	if s.sessions, err = websession.NewCodec(cfg.CookieKeys, "saml session"); err != nil {
		return nil, fmt.Errorf("saml: %w", err)
	}
	if s.logins, err = websession.NewCodec(cfg.CookieKeys, "saml login"); err != nil {
		return nil, fmt.Errorf("saml: %w", err)
	}
	s.jar = websession.Jar{Name: s.cfg.CookieName, Max: s.cfg.MaxCookies, Secure: s.secure}
	s.routes = websession.Routes{s.cfg.MetadataPath: s.serveMetadata, s.cfg.ACSPath: s.serveACS,
		s.cfg.LogoutPath: s.serveLogout}
	if len(s.routes) != 3 {
		return nil, errors.New("saml: MetadataPath, ACSPath and LogoutPath must differ")
	}
	if s.sp, err = s.serviceProvider(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *ServiceProvider) setDefaults() error {
	c := &s.cfg
	app, err := websession.ParseApp("saml", c.AppURI, c.InsecureCookies)
	if err != nil {
		return err
	}
	s.secure, s.origin = app.Secure, app.Origin
	c.AppURI = app.URL.String()
	if c.Key == nil || c.Certificate == nil {
		return errors.New("saml: Key and Certificate are required")
	}
	if len(c.IDPMetadata) == 0 {
		return errors.New("saml: IDPMetadata is required")
	}
	c.MetadataPath = cmp.Or(c.MetadataPath, DefaultMetadataPath)
	c.ACSPath = cmp.Or(c.ACSPath, DefaultACSPath)
	c.LogoutPath = cmp.Or(c.LogoutPath, DefaultLogoutPath)
	for _, p := range []string{c.MetadataPath, c.ACSPath, c.LogoutPath} {
		if _, ok := websession.SafeReturnPath(p); !ok {
			return fmt.Errorf("saml: route %q is not an absolute path", p)
		}
	}
	c.EntityID = cmp.Or(c.EntityID, c.AppURI+c.MetadataPath)
	if s.secure {
		c.CookieName = cmp.Or(c.CookieName, "__Host-regoguard-saml")
	} else {
		c.CookieName = cmp.Or(c.CookieName, "regoguard-saml")
	}
	if c.SessionLifetime <= 0 {
		c.SessionLifetime = websession.DefaultLifetime
	}
	if c.LoginTimeout <= 0 {
		c.LoginTimeout = websession.DefaultLoginTimeout
	}
	if c.MaxCookies <= 0 {
		c.MaxCookies = websession.DefaultMaxCookies
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Store == nil {
		c.Store = authn.NewMemorySessionStore(authn.MemorySessionStoreConfig{Now: c.Now})
	}
	if s.logger = c.Logger; s.logger == nil {
		s.logger = slog.Default()
	}
	return nil
}

// serviceProvider builds crewjam/saml's service provider: SHA-1 signatures
// refused, no IdP-initiated logins, replay protection.
func (s *ServiceProvider) serviceProvider() (*saml.ServiceProvider, error) {
	idp, err := samlsp.ParseMetadata(s.cfg.IDPMetadata)
	if err != nil {
		return nil, fmt.Errorf("saml: IdP metadata: %w", err)
	}
	base, _ := url.Parse(s.cfg.AppURI)
	method := ""
	if s.cfg.SignRequests {
		method = dsig.RSASHA256SignatureMethod
		if _, ok := s.cfg.Key.Public().(*ecdsa.PublicKey); ok {
			method = dsig.ECDSASHA256SignatureMethod
		}
	}
	return &saml.ServiceProvider{
		EntityID:             s.cfg.EntityID,
		Key:                  s.cfg.Key,
		Certificate:          s.cfg.Certificate,
		MetadataURL:          *base.JoinPath(s.cfg.MetadataPath),
		AcsURL:               *base.JoinPath(s.cfg.ACSPath),
		IDPMetadata:          idp,
		SignatureMethod:      method,
		RejectSHA1Signatures: true,
		// Set per request (see verify), with the request's context.
		ReplayCache: nil,
	}, nil
}

// replayCache records used assertion IDs in the session store. crewjam/saml
// calls it once an assertion is verified (signature, audience, validity,
// InResponseTo), so only assertions the IdP signed for this SP are recorded.
type replayCache struct {
	ctx   context.Context
	store authn.SessionStore
	now   func() time.Time
}

// Consume implements saml.AssertionReplayCache.
func (c replayCache) Consume(id string, until time.Time) error {
	ttl := until.Sub(c.now())
	if ttl < time.Minute {
		ttl = time.Minute
	}
	fresh, err := c.store.UseLogin(c.ctx, websession.LoginID("saml-assertion", id), ttl)
	if err != nil {
		return fmt.Errorf("session store: %w", err)
	}
	if !fresh {
		return saml.ErrAssertionReplayed
	}
	return nil
}

// Metadata returns this service provider's metadata document, for the IdP.
func (s *ServiceProvider) Metadata() ([]byte, error) {
	out, err := xml.MarshalIndent(s.sp.Metadata(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("saml: metadata: %w", err)
	}
	return append([]byte(xml.Header), out...), nil
}

// samlLoaded is what the middleware found: an identity, or the error
// Authenticate returns (ErrNoCredential for no or a dropped cookie).
type samlLoaded struct {
	id  *authn.Identity
	err error
}

// Middleware serves the metadata, assertion consumer service and logout
// routes and, for every other request, loads the session: an invalid,
// expired or logged-out session cookie is dropped (the request continues
// unauthenticated, so the authorization middleware challenges it), and the
// session cookies are removed from the request passed on.
func (s *ServiceProvider) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.routes.Serve(w, r) {
			next.ServeHTTP(w, s.loadSession(w, r))
		}
	})
}

// Authenticate implements [authn.Authenticator]. Behind
// [ServiceProvider.Middleware] it returns
// the identity of the session the middleware loaded; otherwise it reads the
// session cookie itself. No cookie is ErrNoCredential; a tampered, expired or
// logged-out session is a CredentialError (the middleware drops such cookies
// first, so browsers are sent to log in instead).
func (s *ServiceProvider) Authenticate(r *http.Request) (*authn.Identity, error) {
	if v, ok := websession.Loaded(r.Context(), s); ok {
		loaded := v.(*samlLoaded)
		if loaded.err != nil {
			return nil, loaded.err
		}
		return loaded.id.Clone(), nil
	}
	return s.readSession(r)
}

// Credentials implements [authn.CredentialReader]: the session cookie
// (Config.CookieName).
func (s *ServiceProvider) Credentials() authn.Credentials {
	return authn.Credentials{Cookies: []string{s.cfg.CookieName}}
}

// Challenge implements [authn.Challenger]: a GET or HEAD that accepts text/html is
// sent to the IdP to log in and comes back to the same path and query.
func (s *ServiceProvider) Challenge(w http.ResponseWriter, r *http.Request) bool {
	if !websession.WantsHTML(r) {
		return false
	}
	s.startLogin(w, r, websession.ReturnTarget(r))
	return true
}

// samlLogin is what a login cookie holds, for one login attempt.
type samlLogin struct {
	RequestID string `json:"id"`
	State     string `json:"st"`
	Return    string `json:"rt"`
	Expiry    int64  `json:"exp"`
}

func (s *ServiceProvider) startLogin(w http.ResponseWriter, r *http.Request, returnTo string) {
	rt, ok := websession.SafeReturnPath(returnTo)
	if !ok || s.routes.Has(rt) {
		rt = "/"
	}
	req, err := s.sp.MakeAuthenticationRequest(s.sp.GetSSOBindingLocation(saml.HTTPRedirectBinding),
		saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	var redirect *url.URL
	state := websession.RandomToken(16) // RelayState is limited to 80 bytes
	if err == nil {
		redirect, err = req.Redirect(state, s.sp)
	}
	if err != nil {
		s.logger.ErrorContext(r.Context(), "saml: cannot make an authentication request", "error", err)
		websession.ErrorPage(w, http.StatusInternalServerError, "Sign-in failed", "The sign-in request could not be made.", "")
		return
	}
	pt, _ := json.Marshal(samlLogin{RequestID: req.ID, State: state, Return: rt,
		Expiry: s.cfg.Now().Add(s.cfg.LoginTimeout).Unix()})
	name := websession.LoginCookieName("regoguard_saml_login_", s.secure, state)
	http.SetCookie(w, s.loginCookie(name, s.logins.Seal(name, pt), int(s.cfg.LoginTimeout.Seconds())))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// loginCookie is sent back with the IdP's cross-site POST to the ACS: with
// https it must be SameSite=None (and Secure); on plain-http localhost Lax
// works, since another port of the same host is the same site.
func (s *ServiceProvider) loginCookie(name, value string, maxAge int) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: s.cfg.ACSPath, MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode}
	if s.secure {
		c.SameSite = http.SameSiteNoneMode
	}
	return c
}

func (s *ServiceProvider) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		websession.MethodNotAllowed(w, "GET, HEAD")
		return
	}
	md, err := s.Metadata()
	if err != nil {
		http.Error(w, "metadata unavailable", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(md)
}

// maxSAMLResponseBytes bounds the form posted to the ACS.
const maxSAMLResponseBytes = 1 << 20

// serveACS accepts the IdP's response to a login this browser started.
func (s *ServiceProvider) serveACS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		websession.MethodNotAllowed(w, "POST")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, maxSAMLResponseBytes)
	if err := r.ParseForm(); err != nil {
		websession.ErrorPage(w, http.StatusBadRequest, "Sign-in failed", "The identity provider's answer could not be read.", "/")
		return
	}
	state := r.PostForm.Get("RelayState")
	login, err := s.readLogin(r, state)
	if err != nil {
		s.logger.InfoContext(r.Context(), "saml: refused a response", "error", err)
		websession.ErrorPage(w, http.StatusBadRequest, "Sign-in failed",
			"This sign-in was not started here, or took too long. Please try again.", "/")
		return
	}
	http.SetCookie(w, s.loginCookie(websession.LoginCookieName("regoguard_saml_login_", s.secure, state), "", -1))
	id, expiry, err := s.verify(r, login.RequestID)
	if errors.Is(err, errStore) {
		s.logger.WarnContext(r.Context(), "saml: cannot record the assertion", "error", err)
		websession.ErrorPage(w, http.StatusServiceUnavailable, "Sign-in could not be completed",
			"The sign-in could not be recorded. Please try again in a moment.", login.Return)
		return
	}
	if err != nil {
		s.logger.WarnContext(r.Context(), "saml: refused an assertion", "error", err)
		websession.ErrorPage(w, http.StatusForbidden, "Sign-in failed",
			"The identity provider's answer could not be verified.", login.Return)
		return
	}
	if err := s.writeSession(w, r, id, expiry); err != nil {
		s.logger.WarnContext(r.Context(), "saml: cannot keep the session", "error", err, "sub", id.Subject)
		websession.ErrorPage(w, http.StatusInternalServerError, "Sign-in failed", err.Error(), "")
		return
	}
	s.logger.InfoContext(r.Context(), "login", "method", Method, "sub", id.Subject)
	http.Redirect(w, r, login.Return, http.StatusSeeOther)
}

func (s *ServiceProvider) readLogin(r *http.Request, state string) (*samlLogin, error) {
	if state == "" {
		return nil, errors.New("no RelayState: IdP-initiated logins are not accepted")
	}
	name := websession.LoginCookieName("regoguard_saml_login_", s.secure, state)
	c, err := r.Cookie(name)
	if err != nil {
		return nil, errors.New("no login cookie for this RelayState")
	}
	pt, err := s.logins.Open(name, c.Value)
	if err != nil {
		return nil, fmt.Errorf("login cookie: %w", err)
	}
	var l samlLogin
	if err := json.Unmarshal(pt, &l); err != nil || l.State != state {
		return nil, errors.New("login cookie does not match the RelayState")
	}
	if s.cfg.Now().Unix() > l.Expiry {
		return nil, errors.New("login timed out")
	}
	return &l, nil
}

// verify checks the posted response with crewjam/saml (signature against the
// IdP's metadata, InResponseTo, destination, audience, validity window,
// replay) and requires the assertion itself to be signed.
func (s *ServiceProvider) verify(r *http.Request, requestID string) (*authn.Identity, time.Time, error) {
	// A shallow copy per request carries the request's context to the
	// replay cache (crewjam/saml's interface takes none).
	sp := *s.sp
	rc := &storeErrCache{replayCache: replayCache{ctx: r.Context(), store: s.cfg.Store, now: s.cfg.Now}}
	sp.ReplayCache = rc
	a, err := sp.ParseResponse(r, []string{requestID})
	if rc.err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %w", errStore, rc.err)
	}
	if err != nil {
		var ire *saml.InvalidResponseError
		if errors.As(err, &ire) && ire.PrivateErr != nil {
			err = ire.PrivateErr
		}
		return nil, time.Time{}, err
	}
	if a.Signature == nil {
		return nil, time.Time{}, errors.New("the assertion is not signed (a signed Response alone is not accepted)")
	}
	if a.Subject == nil || a.Subject.NameID == nil || a.Subject.NameID.Value == "" {
		return nil, time.Time{}, errors.New("the assertion names no subject")
	}
	expiry := s.cfg.Now().Add(s.cfg.SessionLifetime)
	for _, st := range a.AuthnStatements {
		if st.SessionNotOnOrAfter != nil && st.SessionNotOnOrAfter.Before(expiry) {
			expiry = *st.SessionNotOnOrAfter
		}
	}
	id := &authn.Identity{Subject: a.Subject.NameID.Value, Method: Method, Claims: samlClaims(a, s.cfg.FastAPIOPAClaims)}
	return id, expiry, nil
}

// errStore marks a response refused because the session store could not
// record its assertion: the IdP's answer may be good, try again (503).
var errStore = errors.New("session store unavailable")

// storeErrCache remembers a store failure (as opposed to a replay).
type storeErrCache struct {
	replayCache
	err error
}

func (c *storeErrCache) Consume(id string, until time.Time) error {
	err := c.replayCache.Consume(id, until)
	if err != nil && !errors.Is(err, saml.ErrAssertionReplayed) {
		c.err = err
	}
	return err
}

// samlClaims turns the assertion's attributes into claims: one list of
// string values per attribute Name (and per FriendlyName), plus iss; or
// fastapi-opa's claims.
func samlClaims(a *saml.Assertion, fastAPI bool) map[string]any {
	byName, byBoth := map[string]any{}, map[string]any{}
	for _, st := range a.AttributeStatements {
		for _, at := range st.Attributes {
			vals := make([]any, 0, len(at.Values))
			for _, v := range at.Values {
				vals = append(vals, v.Value)
			}
			prev, _ := byName[at.Name].([]any)
			byName[at.Name] = append(prev, vals...)
			byBoth[at.Name] = byName[at.Name]
			if at.FriendlyName != "" && at.FriendlyName != at.Name {
				byBoth[at.FriendlyName] = byName[at.Name]
			}
		}
	}
	if !fastAPI {
		byBoth["iss"] = a.Issuer.Value
		return byBoth
	}
	n := a.Subject.NameID
	c := map[string]any{"samlUserdata": byName, "samlNameId": n.Value, "samlNameIdFormat": n.Format,
		"samlNameIdNameQualifier": n.NameQualifier, "samlNameIdSPNameQualifier": n.SPNameQualifier,
		"samlSessionIndex": ""}
	for _, st := range a.AuthnStatements {
		if st.SessionIndex != "" {
			c["samlSessionIndex"] = st.SessionIndex
		}
	}
	return c
}

// samlSession is what the session cookie holds.
type samlSession struct {
	ID      string         `json:"id"`
	Subject string         `json:"sub"`
	Claims  map[string]any `json:"c"`
	Expiry  int64          `json:"exp"`
}

func (s *ServiceProvider) writeSession(w http.ResponseWriter, r *http.Request, id *authn.Identity, expiry time.Time) error {
	pt, err := json.Marshal(samlSession{ID: websession.RandomToken(16), Subject: id.Subject, Claims: id.Claims, Expiry: expiry.Unix()})
	if err != nil {
		return fmt.Errorf("the assertion's attributes cannot be kept: %w", err)
	}
	chunks, err := s.jar.Split(s.sessions.Seal(s.cfg.CookieName, pt))
	if err != nil {
		return fmt.Errorf("the assertion's attributes are too large for the session cookies: %w", err)
	}
	s.jar.Write(w, r, chunks, int(expiry.Sub(s.cfg.Now()).Seconds()))
	return nil
}

// openSession reads and checks the session cookies of r.
func (s *ServiceProvider) openSession(r *http.Request) (*samlSession, error) {
	raw := s.jar.Read(r)
	if raw == "" {
		return nil, authn.ErrNoCredential
	}
	pt, err := s.sessions.Open(s.cfg.CookieName, raw)
	if err != nil {
		return nil, invalid(err)
	}
	var sess samlSession
	if err := json.Unmarshal(pt, &sess); err != nil {
		return nil, invalid(errors.New("session cookie is malformed"))
	}
	if s.cfg.Now().Unix() >= sess.Expiry {
		return nil, invalid(errors.New("session expired"))
	}
	revoked, err := s.cfg.Store.Revoked(r.Context(), "saml-session:"+sess.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: session store: %w", authn.ErrUnavailable, err)
	}
	if revoked {
		return nil, invalid(errors.New("session logged out"))
	}
	return &sess, nil
}

func (s *ServiceProvider) readSession(r *http.Request) (*authn.Identity, error) {
	sess, err := s.openSession(r)
	if err != nil {
		return nil, err
	}
	return &authn.Identity{Subject: sess.Subject, Method: Method, Claims: sess.Claims}, nil
}

// invalid is a session cookie that is present but refused.
func invalid(err error) error {
	return &authn.CredentialError{Method: Method, Err: err}
}

// loadSession puts the session's identity (or its absence) in the request's
// context, drops an invalid session cookie and hides the session cookies
// from the rest of the chain.
func (s *ServiceProvider) loadSession(w http.ResponseWriter, r *http.Request) *http.Request {
	id, err := s.readSession(r)
	var ce *authn.CredentialError
	if errors.As(err, &ce) {
		s.logger.InfoContext(r.Context(), "saml: dropped a session cookie", "reason", ce.Err)
		s.jar.Clear(w, r)
		err = authn.ErrNoCredential // the browser is sent to log in again
	}
	return s.jar.Strip(websession.WithLoaded(r, s, &samlLoaded{id: id, err: err}))
}

// serveLogout ends the local session (POST, from this origin only); GET
// shows a form that does. A session that cannot be revoked is not reported
// as logged out: 503, cookies kept, try again.
func (s *ServiceProvider) serveLogout(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		websession.LogoutForm(w, s.cfg.LogoutPath, "Sign out of this application?")
		return
	case http.MethodPost:
	default:
		websession.MethodNotAllowed(w, "GET, HEAD, POST")
		return
	}
	if !websession.SameOrigin(r, s.origin) {
		websession.ErrorPage(w, http.StatusForbidden, "Sign-out refused", "Sign-out must be requested from this site.", "/")
		return
	}
	sess, err := s.openSession(r)
	switch {
	case err == nil:
		ttl := time.Unix(sess.Expiry, 0).Sub(s.cfg.Now()) + time.Minute
		if err := s.cfg.Store.Revoke(r.Context(), "saml-session:"+sess.ID, ttl); err != nil {
			s.logger.WarnContext(r.Context(), "saml: logout not recorded", "error", err, "sub", sess.Subject)
			websession.LogoutFailed(w, s.cfg.LogoutPath)
			return
		}
		s.logger.InfoContext(r.Context(), "logout", "method", Method, "sub", sess.Subject)
	case errors.Is(err, authn.ErrUnavailable):
		s.logger.WarnContext(r.Context(), "saml: logout cannot check the session", "error", err)
		websession.LogoutFailed(w, s.cfg.LogoutPath)
		return
	}
	s.jar.Clear(w, r)
	websession.WritePage(w, http.StatusOK, "Signed out", "You are signed out of this application.", "")
}
