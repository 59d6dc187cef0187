package authn

import (
	"errors"
	"net/http"
	"net/url"

	"github.com/regoguard/regoguard/authn/internal/websession"
)

// handleLogout: GET shows a confirmation form (a link or an image cannot log
// anybody out); POST, from this origin only, revokes the session, clears its
// cookies and continues to the provider's end_session_endpoint when it has
// one. A session that cannot be revoked (the store refuses or cannot be
// reached) is not reported as logged out: 503, cookies kept, try again.
func (b *Browser) handleLogout(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		websession.LogoutForm(w, b.cfg.LogoutPath, "Do you want to sign out?")
		return
	case http.MethodPost:
	default:
		websession.MethodNotAllowed(w, "GET, HEAD, POST")
		return
	}
	if !websession.SameOrigin(r, b.origin) {
		b.errorPage(w, http.StatusForbidden, "Sign-out refused", "Sign-out must be requested from this site.", "/")
		return
	}
	var hint string
	if s, err := b.loadSession(r); err == nil || errors.Is(err, errSessionExpired) {
		hint = s.IDToken
		if err := b.store.Revoke(r.Context(), "oidc-session:"+s.ID, b.storeTTL(s)); err != nil {
			b.logger.WarnContext(r.Context(), "logout: could not revoke the session", "error", err, "sub", s.Subject)
			websession.LogoutFailed(w, b.cfg.LogoutPath)
			return
		}
		if b.cfg.SessionData != nil {
			// The revocation already refuses the session; this frees the
			// space, and may fail without harm.
			if err := b.cfg.SessionData.DeleteSession(r.Context(), "oidc-session:"+s.ID); err != nil {
				b.logger.WarnContext(r.Context(), "logout: could not delete the server-side session", "error", err)
			}
		}
		b.logger.InfoContext(r.Context(), "logout", "sub", s.Subject)
	} else if errors.Is(err, ErrUnavailable) {
		b.logger.WarnContext(r.Context(), "logout: cannot check the session", "error", err)
		websession.LogoutFailed(w, b.cfg.LogoutPath)
		return
	}
	b.jar.Clear(w, r)
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
