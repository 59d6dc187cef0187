package authn

import "net/http"

// SessionRoutes is implemented by authenticators that must see requests
// before they are authenticated: the browser flows ([Browser], and the SAML
// service provider of package authn/saml) serve their own routes (login,
// callback, logout, metadata), load and refresh sessions, drop invalid
// session cookies and hide session cookies from the application.
//
// A middleware of package authz wraps itself in Middleware when its
// authenticator implements SessionRoutes; a [Chain] implements it for its
// members. Wrapping twice is harmless (the outer one serves the routes and
// loads the session, the inner one finds no session cookie left).
type SessionRoutes interface {
	Middleware(next http.Handler) http.Handler
}

// Middleware wraps next in the [SessionRoutes] middleware of every member
// of the chain that has one, the first member outermost; with none it
// returns next.
func (c Chain) Middleware(next http.Handler) http.Handler {
	for i := len(c) - 1; i >= 0; i-- {
		if s, ok := c[i].(SessionRoutes); ok {
			next = s.Middleware(next)
		}
	}
	return next
}
