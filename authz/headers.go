package authz

import (
	"cmp"
	"net/http"

	"github.com/regoguard/regoguard/authn"
)

// Headers are compared in the spelling CGI-style servers merge them under
// (authn.NormalizeHeaderName: case-folded, "_" read as "-"), so that no
// other spelling of an identity or credential header slips past.

// credentialSet returns the headers that carry a credential the middleware
// (or a trusted proxy in front of it) consumes: Authorization,
// Proxy-Authorization, the API-key header and the access-token headers of
// authenticating proxies.
func credentialSet(cfg Config) authn.HeaderSet {
	names := append([]string{"Authorization", "Proxy-Authorization", cmp.Or(cfg.APIKeyHeader, authn.DefaultAPIKeyHeader)},
		authn.TokenHeaders()...)
	return authn.NewHeaderSet(names...)
}

// identityHeaders is every identity header in every spelling: removed from
// each request after authentication, before the input is built and before
// the handler sees it.
var identityHeaders = authn.NewHeaderSet(authn.IdentityHeaders()...)

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
// the middleware consumed, unless Config.ForwardCredentials.
func (m *Middleware) forwarded(r *http.Request) *http.Request {
	if m.cfg.ForwardCredentials {
		return r
	}
	return withHeader(r, m.credentials.Without(r.Header))
}
