// Package websession is the machinery the browser flows of regoguard share:
// the OpenID Connect login of package authn and the SAML service provider of
// package authn/saml. It seals cookies, splits a session across cookies,
// names login cookies, checks return addresses, serves a flow's routes,
// carries the loaded session in a request's context and writes the small
// HTML pages the flows show.
//
// One behaviour for both flows: the return target of a challenge is
// r.URL.RequestURI(), sessions last [DefaultLifetime] unless configured, a
// session may be split across a configurable number of cookies, and the
// context key is per instance.
package websession

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Defaults shared by both browser flows.
const (
	// DefaultLifetime bounds a session from login, refreshes included.
	DefaultLifetime = 12 * time.Hour
	// DefaultLoginTimeout bounds the time between the redirect to the
	// identity provider and its answer.
	DefaultLoginTimeout = 10 * time.Minute
	// DefaultMaxCookies is how many cookies a session may be split across.
	DefaultMaxCookies = 4
)

// App is the external base URL of an application and whether its cookies
// carry the Secure attribute.
type App struct {
	URL    *url.URL // scheme://host[:port][/base], no trailing slash
	Origin string   // scheme://host[:port]
	Secure bool
}

// ParseApp checks an application's external base URL: an absolute https URL,
// or plain http on a loopback host when insecure is set (and only then).
// what names the flow in errors ("authn: browser").
func ParseApp(what, uri string, insecure bool) (App, error) {
	u, err := url.Parse(strings.TrimSuffix(uri, "/"))
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return App{}, fmt.Errorf("%s: AppURI %q is not an absolute http(s) URL", what, uri)
	}
	app := App{URL: u, Origin: u.Scheme + "://" + u.Host, Secure: u.Scheme == "https"}
	switch {
	case !app.Secure && !IsLoopbackHost(u.Hostname()):
		return App{}, fmt.Errorf("%s: AppURI %q is plain http on a non-local host; use https", what, uri)
	case !app.Secure && !insecure:
		return App{}, fmt.Errorf("%s: AppURI is plain http: set InsecureCookies (allowed for localhost only)", what)
	case app.Secure && insecure:
		return App{}, fmt.Errorf("%s: InsecureCookies is allowed only for a plain-http localhost AppURI", what)
	}
	return app, nil
}

// IsLoopbackHost reports whether h is localhost or a loopback address.
func IsLoopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// RandomToken returns n random bytes, base64url-encoded.
func RandomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Routes maps the exact paths a flow serves to their handlers.
type Routes map[string]http.HandlerFunc

// Serve serves r when its path is one of the routes, spelled exactly as the
// route is (not percent-encoded: /oauth2%2Flogin and /oauth2/%6cogin decode to
// /oauth2/login), and reports whether it did. Any other spelling goes on to
// the guard, whose path checks refuse what is not canonical, so that no route
// answers at a path the guard would not accept.
func (rs Routes) Serve(w http.ResponseWriter, r *http.Request) bool {
	h, ok := rs[r.URL.EscapedPath()]
	if !ok {
		return false
	}
	h(w, r)
	return true
}

// Has reports whether the path of target (a path with an optional query)
// is one of the routes: a login never returns to a route.
func (rs Routes) Has(target string) bool {
	path, _, _ := strings.Cut(target, "?")
	_, ok := rs[path]
	return ok
}

// contextKey carries what a flow's middleware loaded, per flow instance:
// two flows (or two instances of one) never read each other's session.
type contextKey struct{ owner any }

// WithLoaded returns r with v recorded for owner.
func WithLoaded(r *http.Request, owner, v any) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), contextKey{owner}, v))
}

// Loaded returns what owner's middleware recorded in ctx, if anything.
func Loaded(ctx context.Context, owner any) (any, bool) {
	v := ctx.Value(contextKey{owner})
	return v, v != nil
}

// ReturnTarget is where a login started by a challenge of r comes back to:
// the path and query of r.URL, as the handler that challenged saw them (both
// flows alike). Mount the guard outside any http.StripPrefix, as the login
// routes must be anyway, so that this is the path the browser asked for.
func ReturnTarget(r *http.Request) string { return r.URL.RequestURI() }

// SafeReturnPath accepts only same-origin, absolute paths (with an optional
// query): no scheme, no host, no "//" or "/\" (which browsers read as another
// host), no control characters (browsers drop tabs and newlines).
func SafeReturnPath(s string) (string, bool) {
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

// LoginReturnPath is the return path a login keeps: returnTo when it is a
// safe return path ([SafeReturnPath]) of at most [MaxLoginReturn] bytes;
// without its query when only that fits; else "/". excluded reports paths
// that must not be returned to (the login routes themselves).
func LoginReturnPath(returnTo string, excluded func(string) bool) string {
	rt, ok := SafeReturnPath(returnTo)
	if ok && len(rt) > MaxLoginReturn {
		rt, _, _ = strings.Cut(rt, "?")
	}
	if !ok || len(rt) > MaxLoginReturn || excluded(rt) {
		return "/"
	}
	return rt
}

// WantsHTML reports whether r is a browser navigation that can follow a
// redirect to a login page.
func WantsHTML(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	if r.Header.Get("X-Requested-With") != "" {
		return false
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		mt = strings.ToLower(strings.TrimSpace(mt))
		if mt != "text/html" && mt != "application/xhtml+xml" {
			continue
		}
		if q := strings.ReplaceAll(params, " ", ""); strings.Contains(q, "q=0") && !strings.Contains(q, "q=0.") {
			continue
		}
		return true
	}
	return false
}

// SameOrigin checks a state-changing request's Origin (or Sec-Fetch-Site)
// against origin. Requests without either header come from non-browser
// clients, which carry no ambient credentials worth forging.
func SameOrigin(r *http.Request, origin string) bool {
	if o := r.Header.Get("Origin"); o != "" {
		return o == origin
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		return s == "same-origin" || s == "none"
	}
	return true
}

// MethodNotAllowed answers 405 with an Allow header.
func MethodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
}

// ErrSessionTooLarge is reported when a session does not fit in the allowed
// number of cookies.
var ErrSessionTooLarge = errors.New("authn: session too large for its cookies")
