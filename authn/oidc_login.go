package authn

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/regoguard/regoguard/authn/internal/websession"
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
	rt := websession.LoginReturnPath(returnTo, b.routes.Has)
	_, conf, err := b.provider(r.Context())
	if err != nil {
		b.logger.WarnContext(r.Context(), "login: identity provider unavailable", "error", err)
		b.errorPage(w, http.StatusServiceUnavailable, "The sign-in service is unavailable",
			"The identity provider could not be reached. Please try again in a moment.", rt)
		return
	}
	ls := loginState{State: websession.RandomToken(32), Nonce: websession.RandomToken(32), Verifier: oauth2.GenerateVerifier(),
		Return: rt, Expiry: b.now().Add(b.cfg.LoginTimeout).Unix()}
	pt, _ := json.Marshal(ls)
	name := websession.LoginCookieName("regoguard_login_", b.secure, ls.State)
	http.SetCookie(w, &http.Cookie{Name: name, Value: b.login.Seal(name, pt), Path: b.cfg.CallbackPath,
		MaxAge: int(b.cfg.LoginTimeout.Seconds()), HttpOnly: true, Secure: b.secure, SameSite: http.SameSiteLaxMode})
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, conf.AuthCodeURL(ls.State, oidc.Nonce(ls.Nonce), oauth2.S256ChallengeOption(ls.Verifier)), http.StatusFound)
}

func (b *Browser) handleLogin(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		websession.MethodNotAllowed(w, "GET, HEAD")
		return
	}
	rd := r.URL.Query().Get("rd")
	if rd == "" {
		rd = "/"
	}
	if _, ok := websession.SafeReturnPath(rd); !ok {
		b.errorPage(w, http.StatusBadRequest, "Invalid return address",
			"Sign-in can only return to a page of this site.", "/")
		return
	}
	b.startLogin(w, r, rd)
}

func (b *Browser) handleCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if r.Method != http.MethodGet {
		websession.MethodNotAllowed(w, "GET")
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
	name := websession.LoginCookieName("regoguard_login_", b.secure, state)
	c, err := r.Cookie(name)
	// The login cookie is consumed whatever happens next.
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: b.cfg.CallbackPath, MaxAge: -1,
		HttpOnly: true, Secure: b.secure, SameSite: http.SameSiteLaxMode})
	if err != nil {
		fail(http.StatusBadRequest, "Sign-in expired", "This sign-in attempt has expired or was already used. Please try again.", err)
		return
	}
	pt, err := b.login.Open(name, c.Value)
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
	// Recorded only now, after the provider confirmed the code: a callback
	// without a valid code records nothing, so nobody can fill the store
	// without signing in at the provider.
	if !b.useLogin(ctx, ls, fail) {
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
	if err := b.writeSession(w, r, s); errors.Is(err, ErrUnavailable) {
		fail(http.StatusServiceUnavailable, "Sign-in could not be completed", "The session could not be stored. Please try again in a moment.", err)
		return
	} else if err != nil {
		fail(http.StatusInternalServerError, "Sign-in failed", "Your account information is too large for a session cookie. Please contact the administrator.", err)
		return
	}
	b.logger.InfoContext(ctx, "login", "sub", s.Subject)
	rt, ok := websession.SafeReturnPath(ls.Return)
	if !ok {
		rt = "/"
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, rt, http.StatusSeeOther)
}

// useLogin records the attempt as used, once; it writes the refusal and
// reports false when the attempt was used before or cannot be recorded.
func (b *Browser) useLogin(ctx context.Context, ls loginState, fail func(int, string, string, error)) bool {
	ttl := time.Unix(ls.Expiry, 0).Sub(b.now()) + time.Minute
	first, err := b.store.UseLogin(ctx, websession.LoginID("oidc-login", ls.State), ttl)
	switch {
	case err != nil:
		fail(http.StatusServiceUnavailable, "Sign-in could not be completed", "The sign-in could not be recorded. Please try again in a moment.", err)
		return false
	case !first:
		fail(http.StatusBadRequest, "Sign-in expired", "This sign-in attempt was already used. Please try again.", nil)
		return false
	}
	return true
}

// errorPage explains a failed sign-in and offers to try again.
func (b *Browser) errorPage(w http.ResponseWriter, status int, title, msg, retry string) {
	link := ""
	if rt, ok := websession.SafeReturnPath(retry); ok {
		link = b.cfg.LoginPath + "?rd=" + url.QueryEscape(rt)
	}
	websession.ErrorPage(w, status, title, msg, link)
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
