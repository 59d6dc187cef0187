package authn

import (
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"

	"github.com/regoguard/regoguard/internal/headers"
)

// Identity headers set by authenticating proxies: the generic X-Forwarded-*
// family and OAuth2-Proxy's X-Auth-Request-* family.
var (
	userHeaders     = []string{"X-Auth-Request-User", "X-Forwarded-User"}
	emailHeaders    = []string{"X-Auth-Request-Email", "X-Forwarded-Email"}
	groupsHeaders   = []string{"X-Auth-Request-Groups", "X-Forwarded-Groups"}
	usernameHeaders = []string{"X-Auth-Request-Preferred-Username", "X-Forwarded-Preferred-Username"}
	tokenHeaders    = headers.TokenHeaders
	// Headers that other authenticating proxies set and that services
	// behind them believe (Apache's REMOTE_USER, the Kubernetes API
	// server's request-header authentication): never read here, but a
	// client must not be able to send them either.
	otherIdentityHeaders = []string{"Remote-User", "X-Remote-User", "X-Remote-Group", "X-Remote-Groups"}
)

// IdentityHeaders returns the names of every header that
// [StripIdentityHeaders] removes, in their canonical spelling; every other
// spelling of them (case-folded, "_" read as "-") is removed too.
func IdentityHeaders() []string {
	var all []string
	for _, hs := range [][]string{userHeaders, emailHeaders, groupsHeaders, usernameHeaders, tokenHeaders, otherIdentityHeaders} {
		all = append(all, hs...)
	}
	return all
}

// StripIdentityHeaders deletes every proxy identity header ([IdentityHeaders])
// from r, in every spelling that a server behind the proxy could read as one
// ("X_Auth_Request_User", "x-auth-request-user", "X-Auth_Request-User"). A
// middleware calls it (or [ProxyHeaders.Sanitize]) on every request that did
// not come from a trusted proxy, before anything reads the headers or
// forwards the request, so a client cannot claim an identity by setting them.
func StripIdentityHeaders(r *http.Request) {
	identitySet.Remove(r.Header)
}

// ProxyConfig configures a [ProxyHeaders] authenticator.
type ProxyConfig struct {
	// TrustedCIDRs are the networks of the proxies allowed to set identity
	// headers, e.g. "10.0.0.0/8" or "127.0.0.1/32". Required.
	TrustedCIDRs []string
}

// ProxyHeaders authenticates requests by the identity headers that a trusted
// authenticating proxy (OAuth2-Proxy, an ingress with external auth, ...)
// set. Headers are believed only when the TCP peer (r.RemoteAddr, never
// X-Forwarded-For) is inside a trusted network.
type ProxyHeaders struct {
	trusted []netip.Prefix
}

// NewProxyHeaders checks cfg and returns a ProxyHeaders authenticator.
func NewProxyHeaders(cfg ProxyConfig) (*ProxyHeaders, error) {
	if len(cfg.TrustedCIDRs) == 0 {
		return nil, errors.New("authn: proxy: no trusted CIDRs configured")
	}
	p := &ProxyHeaders{}
	for _, c := range cfg.TrustedCIDRs {
		pfx, err := netip.ParsePrefix(strings.TrimSpace(c))
		if err != nil {
			return nil, fmt.Errorf("authn: proxy: trusted CIDR %q: %w", c, err)
		}
		p.trusted = append(p.trusted, pfx.Masked())
	}
	return p, nil
}

// Trusted reports whether r comes directly from a trusted proxy.
func (p *ProxyHeaders) Trusted(r *http.Request) bool {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	var addr netip.Addr
	if err == nil {
		addr = ap.Addr()
	} else if addr, err = netip.ParseAddr(r.RemoteAddr); err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, pfx := range p.trusted {
		if pfx.Contains(addr) {
			return true
		}
	}
	return false
}

// Sanitize strips the identity headers from r unless it comes from a trusted
// proxy. Call it on every request, whether or not this authenticator is
// reached in the chain.
func (p *ProxyHeaders) Sanitize(r *http.Request) {
	if !p.Trusted(r) {
		StripIdentityHeaders(r)
	}
}

// Authenticate implements [Authenticator]. From an untrusted peer it strips
// the identity headers and returns ErrNoCredential. From a trusted proxy the
// user header (falling back to the email header) is the subject, and email,
// groups (comma-separated) and preferred_username become claims.
func (p *ProxyHeaders) Authenticate(r *http.Request) (*Identity, error) {
	if !p.Trusted(r) {
		StripIdentityHeaders(r)
		return nil, ErrNoCredential
	}
	user, err := oneOf(r, userHeaders, false)
	if err != nil {
		return nil, err
	}
	email, err := oneOf(r, emailHeaders, false)
	if err != nil {
		return nil, err
	}
	uname, err := oneOf(r, usernameHeaders, false)
	if err != nil {
		return nil, err
	}
	groups, err := oneOf(r, groupsHeaders, true)
	if err != nil {
		return nil, err
	}
	sub := user
	if sub == "" {
		sub = email
	}
	if sub == "" {
		return nil, ErrNoCredential
	}
	claims := map[string]any{}
	if email != "" {
		claims["email"] = email
	}
	if uname != "" {
		claims["preferred_username"] = uname
	}
	if groups != "" {
		var gs []any
		for _, g := range strings.Split(groups, ",") {
			if g = strings.Trim(g, " \t"); g != "" {
				if err := checkHeaderValue(g); err != nil {
					return nil, invalid(MethodHeader, "", fmt.Errorf("group header: %v", err))
				}
				gs = append(gs, g)
			}
		}
		claims["groups"] = gs
	}
	return &Identity{Subject: sub, Method: MethodHeader, Claims: claims}, nil
}

// oneOf returns the single value that the headers in names carry. Several
// values, or two families that disagree, are refused as ambiguous, and so is
// a value that [ForwardedIdentity] would never write (a "," that a proxy
// folding repeated headers produces, control characters, invalid UTF-8):
// the reader accepts what the writer emits, and nothing it could mistake.
// Other spellings of the names ("X_Auth_Request_User") are not read.
func oneOf(r *http.Request, names []string, list bool) (string, error) {
	val := ""
	for _, n := range names {
		vs := r.Header.Values(n)
		if len(vs) > 1 {
			return "", invalid(MethodHeader, "", fmt.Errorf("several %s headers", n))
		}
		if len(vs) == 1 {
			v := strings.Trim(vs[0], " \t") // HTTP's optional whitespace; other blanks are refused
			if err := checkHeaderValue(v); err != nil && !(list && strings.Contains(v, ",")) {
				return "", invalid(MethodHeader, "", fmt.Errorf("%s: %v", n, err))
			}
			if val != "" && v != "" && v != val {
				return "", invalid(MethodHeader, "", fmt.Errorf("%s disagrees with %s", n, names[0]))
			}
			if v != "" {
				val = v
			}
		}
	}
	return val, nil
}
