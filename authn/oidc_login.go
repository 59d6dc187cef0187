package authn

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// login is what a login cookie holds, for one login attempt.
type loginState struct {
	State    string `json:"st"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Return   string `json:"rt"`
	Expiry   int64  `json:"exp"`
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
	name := loginCookieName("regoguard_login_", b.secure, ls.State)
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
	name := loginCookieName("regoguard_login_", b.secure, state)
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
