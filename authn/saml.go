package authn

import (
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
	"strings"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlsp"
	dsig "github.com/russellhaering/goxmldsig"
)

// MethodSAML names identities established by a SAML assertion.
const MethodSAML = "saml"

// Default routes of the SAML service provider.
const (
	DefaultSAMLMetadataPath = "/saml/metadata"
	DefaultSAMLACSPath      = "/saml/acs"
	DefaultSAMLLogoutPath   = "/saml/logout"
)

// samlMaxCookies is how many cookies a SAML session may be split across.
const samlMaxCookies = 4

// SAMLConfig configures a SAML service provider.
type SAMLConfig struct {
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
	// bounds it further. Default 8h.
	SessionLifetime time.Duration
	// LoginTimeout bounds the time between the redirect to the IdP and its
	// response. Default 10m.
	LoginTimeout time.Duration
	// FastAPIOPAClaims gives the identity fastapi-opa's SAML claims
	// (samlUserdata, samlNameId, samlNameIdFormat, samlNameIdNameQualifier,
	// samlNameIdSPNameQualifier, samlSessionIndex) instead of one claim per
	// attribute, so that a fastapi-opa SAML policy runs unchanged under the
	// fastapi-opa input layout.
	FastAPIOPAClaims bool
	// Denylist records consumed assertions (replay protection) and logged
	// out sessions. Default: in memory (one process).
	Denylist Denylist
	// Logger. Default slog.Default(). Assertions and cookies are never logged.
	Logger *slog.Logger
	// Now is the clock of sessions. Default time.Now.
	Now func() time.Time
}

// SAML is a SAML 2.0 service provider for browsers, built on
// github.com/crewjam/saml: it sends users to the identity provider
// (HTTP-Redirect binding), accepts the IdP's response on its
// assertion consumer service (HTTP-POST binding) only when it answers a
// request this service provider made, its assertion is signed with a key of
// the IdP's metadata, meant for this service provider, current and not seen
// before, and keeps the user's NameID and attributes in an encrypted session
// cookie.
//
// It is an Authenticator (session cookie → identity whose claims are the
// assertion's attributes), a Challenger (redirects GET requests that accept
// text/html to the IdP), and serves its routes through SAML.Middleware,
// which goes outside the authorization middleware:
//
//	handler := sp.Middleware(authzMiddleware(app))
type SAML struct {
	cfg      SAMLConfig
	sp       *saml.ServiceProvider
	sessions *cookieCodec
	logins   *cookieCodec
	secure   bool
	logger   *slog.Logger
}

// NewSAML checks cfg and returns a SAML service provider.
func NewSAML(cfg SAMLConfig) (*SAML, error) {
	s := &SAML{cfg: cfg}
	if err := s.setDefaults(); err != nil {
		return nil, err
	}
	var err error
	if s.sessions, err = newCookieCodec(cfg.CookieKeys, "saml session"); err != nil {
		return nil, fmt.Errorf("authn: saml: %w", err)
	}
	if s.logins, err = newCookieCodec(cfg.CookieKeys, "saml login"); err != nil {
		return nil, fmt.Errorf("authn: saml: %w", err)
	}
	if s.sp, err = s.serviceProvider(); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *SAML) setDefaults() error {
	c := &s.cfg
	app, err := url.Parse(strings.TrimSuffix(c.AppURI, "/"))
	if err != nil || (app.Scheme != "https" && app.Scheme != "http") || app.Host == "" {
		return fmt.Errorf("authn: saml: AppURI %q is not an absolute http(s) URL", c.AppURI)
	}
	s.secure = app.Scheme == "https"
	switch {
	case !s.secure && !isLoopbackHost(app.Hostname()):
		return fmt.Errorf("authn: saml: AppURI %q is plain http on a non-local host; use https", c.AppURI)
	case !s.secure && !c.InsecureCookies:
		return errors.New("authn: saml: AppURI is plain http: set InsecureCookies (allowed for localhost only)")
	case s.secure && c.InsecureCookies:
		return errors.New("authn: saml: InsecureCookies is allowed only for a plain-http localhost AppURI")
	}
	c.AppURI = app.String()
	if c.Key == nil || c.Certificate == nil {
		return errors.New("authn: saml: Key and Certificate are required")
	}
	if len(c.IDPMetadata) == 0 {
		return errors.New("authn: saml: IDPMetadata is required")
	}
	defaults(&c.MetadataPath, DefaultSAMLMetadataPath)
	defaults(&c.ACSPath, DefaultSAMLACSPath)
	defaults(&c.LogoutPath, DefaultSAMLLogoutPath)
	defaults(&c.EntityID, c.AppURI+c.MetadataPath)
	if s.secure {
		defaults(&c.CookieName, "__Host-regoguard-saml")
	} else {
		defaults(&c.CookieName, "regoguard-saml")
	}
	if c.SessionLifetime <= 0 {
		c.SessionLifetime = 8 * time.Hour
	}
	if c.LoginTimeout <= 0 {
		c.LoginTimeout = 10 * time.Minute
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Denylist == nil {
		c.Denylist = NewMemoryDenylist(0, c.Now)
	}
	if s.logger = c.Logger; s.logger == nil {
		s.logger = slog.Default()
	}
	return nil
}

// serviceProvider builds crewjam/saml's service provider: SHA-1 signatures
// refused, no IdP-initiated logins, replay protection.
func (s *SAML) serviceProvider() (*saml.ServiceProvider, error) {
	idp, err := samlsp.ParseMetadata(s.cfg.IDPMetadata)
	if err != nil {
		return nil, fmt.Errorf("authn: saml: IdP metadata: %w", err)
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
		ReplayCache:          denylistReplayCache{s.cfg.Denylist},
	}, nil
}

// denylistReplayCache records consumed assertion IDs in a Denylist.
type denylistReplayCache struct{ d Denylist }

// Consume implements saml.AssertionReplayCache.
func (c denylistReplayCache) Consume(id string, until time.Time) error {
	fresh, err := c.d.Add(context.Background(), "saml:"+id, until)
	if err != nil {
		return err
	}
	if !fresh {
		return saml.ErrAssertionReplayed
	}
	return nil
}

// Routes returns the paths the service provider serves: metadata, assertion
// consumer service, logout.
func (s *SAML) Routes() []string {
	return []string{s.cfg.MetadataPath, s.cfg.ACSPath, s.cfg.LogoutPath}
}

// Metadata returns this service provider's metadata document, for the IdP.
func (s *SAML) Metadata() ([]byte, error) {
	out, err := xml.MarshalIndent(s.sp.Metadata(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("authn: saml: metadata: %w", err)
	}
	return append([]byte(xml.Header), out...), nil
}

// samlContextKey marks a request whose session the middleware loaded.
type samlContextKey struct{}

// samlLoaded is what the middleware found: an identity, or the error
// Authenticate returns (ErrNoCredential for no or a dropped cookie).
type samlLoaded struct {
	id  *Identity
	err error
}

// Middleware serves the metadata, assertion consumer service and logout
// routes and, for every other request, loads the session: an invalid,
// expired or logged-out session cookie is dropped (the request continues
// unauthenticated, so the authorization middleware challenges it), and the
// session cookies are removed from the request passed on.
func (s *SAML) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case s.cfg.MetadataPath:
			s.serveMetadata(w, r)
		case s.cfg.ACSPath:
			s.serveACS(w, r)
		case s.cfg.LogoutPath:
			s.serveLogout(w, r)
		default:
			next.ServeHTTP(w, s.loadSession(w, r))
		}
	})
}

// Authenticate implements Authenticator. Behind SAML.Middleware it returns
// the identity of the session the middleware loaded; otherwise it reads the
// session cookie itself. No cookie is ErrNoCredential; a tampered, expired or
// logged-out session is a CredentialError (the middleware drops such cookies
// first, so browsers are sent to log in instead).
func (s *SAML) Authenticate(r *http.Request) (*Identity, error) {
	if loaded, ok := r.Context().Value(samlContextKey{}).(*samlLoaded); ok {
		if loaded.err != nil {
			return nil, loaded.err
		}
		return cloneIdentity(loaded.id), nil
	}
	return s.readSession(r)
}

func cloneIdentity(id *Identity) *Identity {
	c := *id
	c.Claims = cloneClaims(id.Claims)
	return &c
}

// Challenge implements Challenger: a GET or HEAD that accepts text/html is
// sent to the IdP to log in and comes back to the same path and query.
func (s *SAML) Challenge(w http.ResponseWriter, r *http.Request) bool {
	if !wantsHTML(r) {
		return false
	}
	s.startLogin(w, r, r.URL.RequestURI())
	return true
}

// samlLogin is what a login cookie holds, for one login attempt.
type samlLogin struct {
	RequestID string `json:"id"`
	State     string `json:"st"`
	Return    string `json:"rt"`
	Expiry    int64  `json:"exp"`
}

func (s *SAML) startLogin(w http.ResponseWriter, r *http.Request, returnTo string) {
	rt, ok := safeReturnPath(returnTo)
	if !ok || s.isRoute(rt) {
		rt = "/"
	}
	req, err := s.sp.MakeAuthenticationRequest(s.sp.GetSSOBindingLocation(saml.HTTPRedirectBinding),
		saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	var redirect *url.URL
	state := randomToken(16) // RelayState is limited to 80 bytes
	if err == nil {
		redirect, err = req.Redirect(state, s.sp)
	}
	if err != nil {
		s.logger.ErrorContext(r.Context(), "saml: cannot make an authentication request", "error", err)
		samlError(w, http.StatusInternalServerError, "Sign-in failed", "The sign-in request could not be made.", "")
		return
	}
	pt, _ := json.Marshal(samlLogin{RequestID: req.ID, State: state, Return: rt,
		Expiry: s.cfg.Now().Add(s.cfg.LoginTimeout).Unix()})
	name := loginCookieName("regoguard_saml_login_", s.secure, state)
	http.SetCookie(w, s.loginCookie(name, s.logins.seal(name, pt), int(s.cfg.LoginTimeout.Seconds())))
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

// loginCookie is sent back with the IdP's cross-site POST to the ACS: with
// https it must be SameSite=None (and Secure); on plain-http localhost Lax
// works, since another port of the same host is the same site.
func (s *SAML) loginCookie(name, value string, maxAge int) *http.Cookie {
	c := &http.Cookie{Name: name, Value: value, Path: s.cfg.ACSPath, MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode}
	if s.secure {
		c.SameSite = http.SameSiteNoneMode
	}
	return c
}

func (s *SAML) isRoute(p string) bool {
	path, _, _ := strings.Cut(p, "?")
	return path == s.cfg.MetadataPath || path == s.cfg.ACSPath || path == s.cfg.LogoutPath
}

func (s *SAML) serveMetadata(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
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
func (s *SAML) serveACS(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	r.Body = http.MaxBytesReader(w, r.Body, maxSAMLResponseBytes)
	if err := r.ParseForm(); err != nil {
		samlError(w, http.StatusBadRequest, "Sign-in failed", "The identity provider's answer could not be read.", "/")
		return
	}
	state := r.PostForm.Get("RelayState")
	login, err := s.readLogin(r, state)
	if err != nil {
		s.logger.InfoContext(r.Context(), "saml: refused a response", "error", err)
		samlError(w, http.StatusBadRequest, "Sign-in failed",
			"This sign-in was not started here, or took too long. Please try again.", "/")
		return
	}
	http.SetCookie(w, s.loginCookie(loginCookieName("regoguard_saml_login_", s.secure, state), "", -1))
	id, expiry, err := s.verify(r, login.RequestID)
	if err != nil {
		s.logger.WarnContext(r.Context(), "saml: refused an assertion", "error", err)
		samlError(w, http.StatusForbidden, "Sign-in failed",
			"The identity provider's answer could not be verified.", login.Return)
		return
	}
	if err := s.writeSession(w, r, id, expiry); err != nil {
		s.logger.WarnContext(r.Context(), "saml: cannot keep the session", "error", err, "sub", id.Subject)
		samlError(w, http.StatusInternalServerError, "Sign-in failed", err.Error(), "")
		return
	}
	s.logger.InfoContext(r.Context(), "login", "method", MethodSAML, "sub", id.Subject)
	http.Redirect(w, r, login.Return, http.StatusSeeOther)
}

func (s *SAML) readLogin(r *http.Request, state string) (*samlLogin, error) {
	if state == "" {
		return nil, errors.New("no RelayState: IdP-initiated logins are not accepted")
	}
	name := loginCookieName("regoguard_saml_login_", s.secure, state)
	c, err := r.Cookie(name)
	if err != nil {
		return nil, errors.New("no login cookie for this RelayState")
	}
	pt, err := s.logins.open(name, c.Value)
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
func (s *SAML) verify(r *http.Request, requestID string) (*Identity, time.Time, error) {
	a, err := s.sp.ParseResponse(r, []string{requestID})
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
	id := &Identity{Subject: a.Subject.NameID.Value, Method: MethodSAML, Claims: samlClaims(a, s.cfg.FastAPIOPAClaims)}
	return id, expiry, nil
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

func (s *SAML) writeSession(w http.ResponseWriter, r *http.Request, id *Identity, expiry time.Time) error {
	pt, err := json.Marshal(samlSession{ID: randomToken(16), Subject: id.Subject, Claims: id.Claims, Expiry: expiry.Unix()})
	if err != nil {
		return fmt.Errorf("the assertion's attributes cannot be kept: %w", err)
	}
	chunks, err := splitChunks(s.sessions.seal(s.cfg.CookieName, pt), samlMaxCookies)
	if err != nil {
		return fmt.Errorf("the assertion's attributes are too large for the session cookies: %w", err)
	}
	maxAge := int(expiry.Sub(s.cfg.Now()).Seconds())
	for i, v := range chunks {
		http.SetCookie(w, s.sessionCookie(chunkName(s.cfg.CookieName, i), v, maxAge))
	}
	for i := len(chunks); i < samlMaxCookies; i++ {
		if _, err := r.Cookie(chunkName(s.cfg.CookieName, i)); err == nil {
			http.SetCookie(w, s.sessionCookie(chunkName(s.cfg.CookieName, i), "", -1))
		}
	}
	return nil
}

func (s *SAML) sessionCookie(name, value string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: name, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode}
}

func (s *SAML) isSessionCookie(name string) bool {
	for i := range samlMaxCookies {
		if name == chunkName(s.cfg.CookieName, i) {
			return true
		}
	}
	return false
}

// openSession reads and checks the session cookies of r.
func (s *SAML) openSession(r *http.Request) (*samlSession, error) {
	raw := readChunks(r, s.cfg.CookieName, samlMaxCookies)
	if raw == "" {
		return nil, ErrNoCredential
	}
	pt, err := s.sessions.open(s.cfg.CookieName, raw)
	if err != nil {
		return nil, invalid(MethodSAML, "", err)
	}
	var sess samlSession
	if err := json.Unmarshal(pt, &sess); err != nil {
		return nil, invalid(MethodSAML, "", errors.New("session cookie is malformed"))
	}
	if s.cfg.Now().Unix() >= sess.Expiry {
		return nil, invalid(MethodSAML, "", errors.New("session expired"))
	}
	revoked, err := s.cfg.Denylist.Contains(r.Context(), "saml-session:"+sess.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: denylist: %v", ErrUnavailable, err)
	}
	if revoked {
		return nil, invalid(MethodSAML, "", errors.New("session logged out"))
	}
	return &sess, nil
}

func (s *SAML) readSession(r *http.Request) (*Identity, error) {
	sess, err := s.openSession(r)
	if err != nil {
		return nil, err
	}
	return &Identity{Subject: sess.Subject, Method: MethodSAML, Claims: sess.Claims}, nil
}

// loadSession puts the session's identity (or its absence) in the request's
// context, drops an invalid session cookie and hides the session cookies
// from the rest of the chain.
func (s *SAML) loadSession(w http.ResponseWriter, r *http.Request) *http.Request {
	id, err := s.readSession(r)
	var ce *CredentialError
	if errors.As(err, &ce) {
		s.logger.InfoContext(r.Context(), "saml: dropped a session cookie", "reason", ce.Err)
		s.clearSession(w, r)
		err = ErrNoCredential // the browser is sent to log in again
	}
	r2 := r.WithContext(context.WithValue(r.Context(), samlContextKey{}, &samlLoaded{id: id, err: err}))
	r2.Header = r.Header.Clone()
	r2.Header.Del("Cookie")
	for _, c := range r.Cookies() {
		if !s.isSessionCookie(c.Name) {
			r2.AddCookie(c)
		}
	}
	return r2
}

func (s *SAML) clearSession(w http.ResponseWriter, r *http.Request) {
	for _, c := range r.Cookies() {
		if s.isSessionCookie(c.Name) {
			http.SetCookie(w, s.sessionCookie(c.Name, "", -1))
		}
	}
}

// serveLogout ends the local session (POST); GET shows a form that does.
func (s *SAML) serveLogout(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		writePage(w, http.StatusOK, "Sign out", "Sign out of this application?",
			`<form method="post" action="`+htmlEscape(s.cfg.LogoutPath)+`"><button id="logout" type="submit">Sign out</button></form>`)
	case http.MethodPost:
		if sess, err := s.openSession(r); err == nil {
			if _, err := s.cfg.Denylist.Add(r.Context(), "saml-session:"+sess.ID, time.Unix(sess.Expiry, 0)); err != nil {
				s.logger.WarnContext(r.Context(), "saml: logout not recorded", "error", err)
				samlError(w, http.StatusServiceUnavailable, "Sign-out failed", "Please try again.", "")
				return
			}
		}
		s.clearSession(w, r)
		writePage(w, http.StatusOK, "Signed out", "You are signed out of this application.", "")
	default:
		w.Header().Set("Allow", "GET, HEAD, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// samlError explains a failed sign-in; retry, when a safe path, is offered
// as a link to try again.
func samlError(w http.ResponseWriter, status int, title, msg, retry string) {
	link := ""
	if rt, ok := safeReturnPath(retry); ok {
		link = `<p><a id="retry" href="` + htmlEscape(rt) + `">Try again</a></p>`
	}
	writePage(w, status, title, msg, link)
}
