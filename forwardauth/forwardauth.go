// Package forwardauth lets a reverse proxy that is already in place ask
// regoguard for every decision: nginx auth_request, Traefik forwardAuth,
// Caddy forward_auth, and Envoy's HTTP ext_authz. Each request it gets is
// judged as the original request the proxy describes, by an
// [authz.Middleware] (the same authentication, policy, decision logs,
// metrics, traces, dry run and decision cache as the reverse-proxy mode),
// and answered the way these proxies expect: 200 with the identity headers
// for the proxy to copy upstream, or the policy's refusal.
//
// # The original request
//
// From a peer in Config.TrustedProxies, these headers describe it:
//
//   - nginx auth_request: X-Original-Method and X-Original-URI (set from
//     $request_uri), or ingress-nginx's X-Original-URL.
//   - Traefik forwardAuth, Caddy forward_auth: X-Forwarded-Method,
//     X-Forwarded-Uri, X-Forwarded-Host, X-Forwarded-Proto.
//
// input.host is the forwarded host (X-Forwarded-Host, else Host) without
// its port; the scheme is X-Forwarded-Proto's. When an X-Original-* header
// and its X-Forwarded-* twin are both present they must agree, or the
// request is refused (400): nginx relays the client's own headers to the
// auth request, so a X-Forwarded-Method the client wrote must never decide.
// A request that carries any of these headers from a peer outside
// TrustedProxies is refused (403), never judged as if they were absent. A
// request with none of them is judged as itself (Envoy's HTTP ext_authz
// sends the original method and path as its own).
//
// # Identity headers
//
// The fronting proxy relays the client's headers, identity headers
// (X-Forwarded-User, X-Auth-Request-*) included: they are the client's, and
// the middleware removes them from the input in any spelling. Do not put an
// authn.ProxyHeaders authenticator in front of forward-auth unless the
// proxy itself sets (and overwrites) those headers.
//
// # Answers
//
//   - allowed: 200, empty body, with the identity headers
//     (authn.ForwardedIdentity: X-Auth-Request-User, -Email, -Groups) and
//     the policy's headers, for auth_request_set, authResponseHeaders or
//     copy_headers.
//   - refused: the middleware's 401 (with WWW-Authenticate) or the
//     policy's status (403 by default) and headers. A browser the
//     authenticator would send to log in gets 401 when the proxy is nginx
//     (auth_request accepts only 2xx, 401 and 403: use error_page 401 to
//     start the login), and the redirect itself from Traefik and Caddy,
//     which pass it to the browser.
package forwardauth

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/internal/headers"
)

// The headers that describe the original request.
const (
	HeaderOriginalMethod  = "X-Original-Method"
	HeaderOriginalURI     = "X-Original-URI"
	HeaderOriginalURL     = "X-Original-URL"
	HeaderForwardedMethod = "X-Forwarded-Method"
	HeaderForwardedURI    = "X-Forwarded-Uri"
	HeaderForwardedHost   = "X-Forwarded-Host"
	HeaderForwardedProto  = "X-Forwarded-Proto"
)

var describing = []string{HeaderOriginalMethod, HeaderOriginalURI, HeaderOriginalURL,
	HeaderForwardedMethod, HeaderForwardedURI, HeaderForwardedHost, HeaderForwardedProto}

// describingSet holds them in every spelling ("X_Original_URI" is the same
// header to a CGI-style reader).
var describingSet = headers.NewSet(describing...)

// Config configures a forward-auth [Handler].
type Config struct {
	// Guard judges each original request: an authz.Middleware made for
	// forward-auth (no Body: the proxies do not send it; see New).
	Guard *authz.Middleware
	// TrustedProxies are the networks (CIDRs, or single addresses) of the
	// proxies whose description of the original request is believed.
	// Required.
	TrustedProxies []string
	// DirectOnly lists path prefixes (the browser login's /oauth2/...) that
	// are served only to requests made to them directly: an original
	// request described by a proxy for one of them is refused (403), so
	// that a check never runs a login callback or a logout.
	DirectOnly []string
	// Allowed, when set, writes the answer to an allowed request instead
	// of the default (200 with the identity headers). It finds the caller
	// and the decision with authz.FromContext.
	Allowed http.Handler
	// ForwardOptions configures the identity headers of the default
	// answer.
	ForwardOptions authn.ForwardOptions
}

// Handler answers forward-auth requests. Make one with [New].
type Handler struct {
	trusted []netip.Prefix
	direct  []string
	guarded http.Handler
}

// New returns the forward-auth handler of cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Guard == nil {
		return nil, errors.New("forwardauth: no Guard: give the authz.Middleware that judges the original requests")
	}
	if len(cfg.TrustedProxies) == 0 {
		return nil, errors.New("forwardauth: no TrustedProxies: name the proxies whose X-Original-*/X-Forwarded-* headers are believed")
	}
	h := &Handler{direct: cfg.DirectOnly}
	for _, c := range cfg.TrustedProxies {
		p, err := parsePrefix(c)
		if err != nil {
			return nil, fmt.Errorf("forwardauth: trusted proxy %q: %w", c, err)
		}
		h.trusted = append(h.trusted, p)
	}
	allowed := cfg.Allowed
	if allowed == nil {
		allowed = identityAnswer(cfg.ForwardOptions)
	}
	h.guarded = cfg.Guard.Handler(allowed)
	return h, nil
}

func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// identityAnswer is the default answer to an allowed request: 200 with the
// identity headers. A caller whose identity no header carries faithfully
// (a group holding ",") is refused, as in the reverse-proxy mode.
func identityAnswer(opts authn.ForwardOptions) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, _ := authz.FromContext(r.Context())
		if res.Identity != nil {
			h, err := authn.ForwardedIdentity(res.Identity, opts)
			if err != nil {
				http.Error(w, "the caller's identity cannot be passed on faithfully", http.StatusForbidden)
				return
			}
			for k, v := range h {
				w.Header()[k] = v
			}
		}
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
	})
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !describes(r) {
		h.guarded.ServeHTTP(w, r)
		return
	}
	if !h.fromTrusted(r) {
		refuse(w, http.StatusForbidden, "the original-request headers (X-Original-*, X-Forwarded-*) come from an address that is not a trusted proxy")
		return
	}
	orig, nginx, err := original(r)
	if err != nil {
		refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	for _, p := range h.direct {
		if strings.HasPrefix(orig.URL.Path, p) {
			refuse(w, http.StatusForbidden, "this path is served directly, never through a forward-auth check")
			return
		}
	}
	if nginx {
		w = &nginxWriter{ResponseWriter: w}
	}
	h.guarded.ServeHTTP(w, orig)
}

// describes reports whether r carries any header that describes an
// original request, in any spelling.
func describes(r *http.Request) bool {
	for name := range r.Header {
		if describingSet.Has(name) {
			return true
		}
	}
	return false
}

func (h *Handler) fromTrusted(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	a := ap.Addr().Unmap()
	for _, p := range h.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// describedBy collects the values of the describing headers of r, by
// their index in describing, reading each header name once in every
// spelling (X_Original_URI is X-Original-URI to a CGI-style reader).
func describedBy(r *http.Request) (vals [7][]string, names []string) {
	for k, vs := range r.Header {
		norm := headers.Normalize(k)
		for i, d := range describingNorm {
			if norm == d {
				vals[i] = append(vals[i], vs...)
				names = append(names, k)
			}
		}
	}
	return vals, names
}

var describingNorm = func() (out [7]string) {
	for i, d := range describing {
		out[i] = headers.Normalize(d)
	}
	return out
}()

// original builds the request the proxy describes. nginx reports whether
// it is nginx's auth_request (X-Original-URI or X-Original-URL).
func original(r *http.Request) (*http.Request, bool, error) {
	var v [7]string
	var has [7]bool
	vals, names := describedBy(r)
	for i, vs := range vals {
		switch len(vs) {
		case 0:
		case 1:
			v[i], has[i] = strings.TrimSpace(vs[0]), true
		default:
			return nil, false, fmt.Errorf("the %s header is given %d times: one original request has one", describing[i], len(vs))
		}
	}
	oMethod, oURI, oURL, fMethod, fURI, fHost, fProto := 0, 1, 2, 3, 4, 5, 6
	nginx := has[oURI] || has[oURL]

	method := r.Method
	switch {
	case has[oMethod]:
		method = v[oMethod]
	case has[fMethod] && !nginx:
		method = v[fMethod]
	}
	if has[fMethod] && v[fMethod] != method {
		return nil, false, fmt.Errorf("X-Forwarded-Method %q disagrees with the original request's method %q", v[fMethod], method)
	}
	if !validMethod(method) {
		return nil, false, fmt.Errorf("the original request's method %q is not an HTTP method", method)
	}

	host, proto := r.Host, ""
	uri := ""
	if has[oURL] {
		u, err := url.Parse(v[oURL])
		if err != nil || !u.IsAbs() || u.Host == "" {
			return nil, false, fmt.Errorf("X-Original-URL %q is not an absolute URL", v[oURL])
		}
		host, proto, uri = u.Host, u.Scheme, u.RequestURI()
		if u.RawPath == "" && u.Opaque == "" {
			// Keep the path as sent: RequestURI re-escapes a decoded path.
			uri = rawRequestURI(v[oURL])
		}
	}
	if has[oURI] {
		if uri != "" && uri != v[oURI] {
			return nil, false, fmt.Errorf("X-Original-URI %q disagrees with X-Original-URL", v[oURI])
		}
		uri = v[oURI]
	}
	switch {
	case uri != "" && has[fURI] && v[fURI] != uri:
		return nil, false, fmt.Errorf("X-Forwarded-Uri %q disagrees with the original URI %q", v[fURI], uri)
	case uri == "" && has[fURI]:
		uri = v[fURI]
	case uri == "":
		uri = r.URL.RequestURI()
	}
	if has[fHost] {
		if proto == "" || sameHost(v[fHost], host) {
			host = v[fHost]
		} else {
			return nil, false, fmt.Errorf("X-Forwarded-Host %q disagrees with X-Original-URL", v[fHost])
		}
	}
	if has[fProto] {
		p := strings.ToLower(v[fProto])
		if proto != "" && p != proto {
			return nil, false, fmt.Errorf("X-Forwarded-Proto %q disagrees with X-Original-URL", v[fProto])
		}
		proto = p
	}
	if proto != "" && proto != "http" && proto != "https" {
		return nil, false, fmt.Errorf("X-Forwarded-Proto %q is neither http nor https", proto)
	}
	if strings.ContainsAny(host, ", /\\@") || host == "" {
		return nil, false, fmt.Errorf("the forwarded host %q is not one host name", host)
	}
	if !strings.HasPrefix(uri, "/") {
		return nil, false, fmt.Errorf("the original URI %q is not an absolute path", uri)
	}
	u, err := url.ParseRequestURI(uri)
	if err != nil {
		return nil, false, fmt.Errorf("the original URI %q: %v", uri, err)
	}

	out := r.Clone(r.Context())
	out.Method = method
	out.URL = u
	out.RequestURI = uri
	out.Host = hostOnly(host)
	out.Body, out.ContentLength = http.NoBody, 0
	out.TLS = nil
	if proto == "https" {
		// The original request came over TLS to the proxy: what the input's
		// scheme reads. No certificate is claimed.
		out.TLS = &tls.ConnectionState{}
	}
	for _, k := range names {
		delete(out.Header, k)
	}
	out.Header.Del("Content-Length")
	out.Header.Del("Transfer-Encoding")
	return out, nginx, nil
}

// rawRequestURI is the path and query of an absolute URL as written.
func rawRequestURI(s string) string {
	rest := s[strings.Index(s, "://")+3:]
	i := strings.IndexAny(rest, "/?#")
	if i < 0 {
		return "/"
	}
	rest = rest[i:]
	if j := strings.IndexByte(rest, '#'); j >= 0 {
		rest = rest[:j]
	}
	if strings.HasPrefix(rest, "?") {
		rest = "/" + rest
	}
	return rest
}

func sameHost(a, b string) bool { return strings.EqualFold(hostOnly(a), hostOnly(b)) }

// hostOnly is host without its port.
func hostOnly(host string) string {
	if h, _, err := net.SplitHostPort(host); err == nil {
		return h
	}
	return strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
}

func validMethod(m string) bool {
	if m == "" {
		return false
	}
	for i := 0; i < len(m); i++ {
		c := m[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func refuse(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, "{\"error\":%q,\"message\":%q}\n", strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_"), msg)
}

// nginxWriter turns a redirect (a browser sent to log in) into 401: nginx's
// auth_request takes any status but 2xx, 401 and 403 as an error (500).
// error_page 401 then starts the login.
type nginxWriter struct {
	http.ResponseWriter
	wrote bool
}

func (n *nginxWriter) WriteHeader(status int) {
	if !n.wrote && status >= 300 && status < 400 {
		n.Header().Del("Location")
		n.Header().Set("WWW-Authenticate", `Bearer realm="regoguard"`)
		status = http.StatusUnauthorized
	}
	n.wrote = true
	n.ResponseWriter.WriteHeader(status)
}

func (n *nginxWriter) Write(b []byte) (int, error) {
	if !n.wrote {
		n.WriteHeader(http.StatusOK)
	}
	return n.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (n *nginxWriter) Unwrap() http.ResponseWriter { return n.ResponseWriter }
