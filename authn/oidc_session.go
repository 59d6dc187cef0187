package authn

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/regoguard/regoguard/authn/internal/websession"
)

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
	// Ref is set instead of the rest in a cookie that refers to a
	// server-side session (see sessionRef and resolveSession).
	Ref string `json:"ref,omitempty"`
}

// marshal returns the JSON that is sealed for s: without the claims when
// the raw ID token, which carries them, is kept (see claimsFromIDToken).
func (s session) marshal() ([]byte, error) {
	if s.IDToken != "" {
		s.Claims = nil
	}
	return json.Marshal(&s)
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
	jws, err := jose.ParseSignedCompact(raw, toJOSE(defaultAlgorithms))
	if err != nil {
		return nil, fmt.Errorf("session ID token: %w", err)
	}
	claims := map[string]any{}
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		return nil, fmt.Errorf("session ID token claims: %w", err)
	}
	return claims, nil
}

var errMalformedSession = errors.New("session cookie is malformed")

// errSessionExpired means the session's ID token expired (a refresh may help).
var errSessionExpired = errors.New("session expired")

// loadSession reads and checks the session cookie. ErrNoCredential: no
// cookie. errSessionExpired (with the session): the ID token expired.
func (b *Browser) loadSession(r *http.Request) (*session, error) {
	raw := b.jar.Read(r)
	if raw == "" {
		return nil, ErrNoCredential
	}
	pt, err := b.session.Open(b.cfg.CookieName, raw)
	if err != nil {
		return nil, err
	}
	var s session
	if err := json.Unmarshal(pt, &s); err != nil {
		return nil, errMalformedSession
	}
	if err := b.resolveSession(r.Context(), &s); err != nil {
		return nil, err
	}
	if s.ID == "" || s.Subject == "" {
		return nil, errMalformedSession
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
	revoked, err := b.store.Revoked(r.Context(), "oidc-session:"+s.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: session store: %w", ErrUnavailable, err)
	}
	if revoked {
		return nil, errors.New("session was logged out")
	}
	if now.Add(-b.cfg.ClockSkew).Unix() >= s.Expiry {
		return &s, errSessionExpired
	}
	return &s, nil
}

func (b *Browser) newSession(idt *oidc.IDToken, rawID, refreshToken string) (*session, error) {
	claims := map[string]any{}
	if err := idt.Claims(&claims); err != nil {
		return nil, err
	}
	now := b.now()
	return &session{ID: websession.RandomToken(16), Subject: idt.Subject, Claims: claims, IDToken: rawID,
		RefreshToken: refreshToken, Expiry: idt.Expiry.Unix(), End: now.Add(b.cfg.SessionLifetime).Unix()}, nil
}

// writeSession seals s into as many cookies as needed, trimming the ID token
// and then the refresh token when it does not fit.
func (b *Browser) writeSession(w http.ResponseWriter, r *http.Request, s *session) error {
	if b.cfg.SessionData != nil {
		return b.writeServerSession(w, r, s)
	}
	trimmed := *s
	var chunks []string
	for {
		pt, err := trimmed.marshal()
		if err != nil {
			return err
		}
		chunks, err = b.jar.Split(b.session.Seal(b.cfg.CookieName, pt))
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
	b.jar.Write(w, r, chunks, int(s.End-b.now().Unix()))
	return nil
}

// storeTTL is how long the stores keep what concerns s (its revocation, its
// server-side copy): the rest of its lifetime, and the clock skew.
func (b *Browser) storeTTL(s *session) time.Duration {
	return time.Unix(s.End, 0).Sub(b.now()) + b.cfg.ClockSkew
}

// clearSession deletes every session cookie the browser sent.
func (b *Browser) clearSession(w http.ResponseWriter, r *http.Request) { b.jar.Clear(w, r) }

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
