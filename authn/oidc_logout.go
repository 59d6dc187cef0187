package authn

import (
	"errors"
	"net/http"
	"net/url"
	"time"
)

// handleLogout: GET shows a confirmation form (a link or an image cannot log
// anybody out); POST, from this origin only, revokes the session, clears its
// cookies and continues to the provider's end_session_endpoint when it has
// one.
func (b *Browser) handleLogout(w http.ResponseWriter, r *http.Request) {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		writePage(w, http.StatusOK, "Sign out", "Do you want to sign out?",
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
