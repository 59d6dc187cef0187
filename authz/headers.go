package authz

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/internal/headers"
)

// Headers are compared in the spelling CGI-style servers merge them under
// (headers.Normalize: case-folded, "_" read as "-"), so that no
// other spelling of an identity or credential header slips past.

// credentialSet returns the headers that carry a credential the middleware
// (or a trusted proxy in front of it) consumes: Authorization,
// Proxy-Authorization, the default API-key header, the access-token headers
// of authenticating proxies, and every header the authenticator declares
// (authn.CredentialsOf: the API-key header, whatever its name).
func credentialSet(creds authn.Credentials) headers.Set {
	names := append([]string{"Authorization", "Proxy-Authorization", authn.DefaultAPIKeyHeader}, headers.TokenHeaders...)
	return headers.NewSet(append(names, creds.Headers...)...)
}

// without returns value, a Cookie header, without the cookies in names (and
// their chunks, name.1, name.2, ...), and whether it removed any.
func withoutCookies(value string, names []string) (string, bool) {
	var kept []string
	removed := false
	for part := range strings.SplitSeq(value, ";") {
		name, _, _ := strings.Cut(strings.TrimSpace(part), "=")
		// "sid =x": Go's parser skips it, others (Node's cookie, Python's
		// SimpleCookie) read it as sid.
		if ownsCookie(names, strings.TrimSpace(name)) {
			removed = true
			continue
		}
		kept = append(kept, strings.TrimSpace(part))
	}
	if !removed {
		return value, false
	}
	return strings.Join(kept, "; "), true
}

// ownsCookie reports whether the cookie called name is one of names or a
// chunk of one (name.N).
func ownsCookie(names []string, name string) bool {
	for _, n := range names {
		if name == n {
			return true
		}
		if rest, ok := strings.CutPrefix(name, n+"."); ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			return true
		}
	}
	return false
}

// withoutQuery returns raw, a query string, without the parameters in
// names, and whether it removed any. The other parameters keep their bytes.
func withoutQuery(raw string, names map[string]bool) (string, bool) {
	var kept []string
	removed := false
	for part := range strings.SplitSeq(raw, "&") {
		key, _, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); err == nil && names[queryName(k)] || names[queryName(key)] {
			removed = true
			continue
		}
		kept = append(kept, part)
	}
	if !removed {
		return raw, false
	}
	return strings.Join(kept, "&"), true
}

// queryName is the spelling in which query parameter names are compared
// with the declared ones: without case (ASP.NET Core), without a trailing
// "[]" and with ".", " " and "[" read as "_" (PHP, Rails), so that no
// framework behind the middleware reads as the credential a parameter the
// middleware let through.
func queryName(k string) string {
	return queryNameReplacer.Replace(strings.TrimSuffix(strings.ToLower(k), "[]"))
}

var queryNameReplacer = strings.NewReplacer(".", "_", " ", "_", "[", "_")

// identityHeaders is every identity header in every spelling: removed from
// each request after authentication, before the input is built and before
// the handler sees it.
var identityHeaders = headers.NewSet(authn.IdentityHeaders()...)

// repeatedCredential returns the normalised name of a credential header that
// the request carries more than once (in one spelling or several), or "".
// Only one of them could be verified; the others would pass unchecked.
func (m *Middleware) repeatedCredential(r *http.Request) string {
	return m.credentials.Repeated(r.Header)
}

// withHeader returns r itself when h is r.Header, and otherwise a shallow
// copy of r holding h: the caller's request is never written to.
func withHeader(r *http.Request, h http.Header) *http.Request {
	if len(h) == len(r.Header) {
		return r
	}
	r2 := new(http.Request)
	*r2 = *r
	r2.Header = h
	return r2
}

// withoutIdentity returns r without any identity header: the identity is
// in the request's context, and what a client or proxy sent under those
// names must reach neither the policy input nor the handler.
func withoutIdentity(r *http.Request) *http.Request {
	return withHeader(r, identityHeaders.Without(r.Header))
}

// forwarded returns the request the handler gets: without the credentials
// the middleware consumed (the headers, cookies and query parameters the
// authenticator declares), unless Config.ForwardCredentials.
func (m *Middleware) forwarded(r *http.Request) *http.Request {
	if m.cfg.ForwardCredentials {
		return r
	}
	r = withHeader(r, m.credentials.Without(r.Header))
	if len(m.creds.Cookies) > 0 && len(r.Header["Cookie"]) > 0 {
		h, changed := r.Header, false
		var vs []string
		for _, v := range h["Cookie"] {
			nv, removed := withoutCookies(v, m.creds.Cookies)
			changed = changed || removed
			if nv != "" {
				vs = append(vs, nv)
			}
		}
		if changed {
			h = h.Clone()
			if len(vs) == 0 {
				delete(h, "Cookie")
			} else {
				h["Cookie"] = vs
			}
			r2 := new(http.Request)
			*r2 = *r
			r2.Header = h
			r = r2
		}
	}
	if len(m.credQuery) > 0 && r.URL.RawQuery != "" {
		if q, removed := withoutQuery(r.URL.RawQuery, m.credQuery); removed {
			u := *r.URL
			u.RawQuery = q
			r2 := new(http.Request)
			*r2 = *r
			r2.URL = &u
			r2.RequestURI = u.RequestURI()
			r = r2
		}
	}
	return r
}
