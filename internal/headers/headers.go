// Package headers compares HTTP header (and gRPC metadata) names the way
// the servers behind a proxy compare them: CGI, WSGI, PHP and Rack turn
// "X-Auth-Request-User", "x_auth_request_user" and "X-Auth_Request-User"
// alike into HTTP_X_AUTH_REQUEST_USER. A header whose name matches an
// identity or credential header in that reading is treated as that header,
// whatever its spelling. It serves packages authn, authz, grpcauthz and the
// CLI.
package headers

import "net/http"

// Normalize returns name lower-cased with every "_" read as "-":
// the spelling under which CGI-style servers merge header names.
func Normalize(name string) string {
	var buf [64]byte
	if len(name) <= len(buf) {
		return string(normalizeInto(buf[:0], name))
	}
	return string(normalizeInto(make([]byte, 0, len(name)), name))
}

// normalizeInto appends the normalised name to dst.
func normalizeInto(dst []byte, name string) []byte {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '_':
			c = '-'
		}
		dst = append(dst, c)
	}
	return dst
}

// Set is a set of header names compared in their normalised spelling
// ([Normalize]). The zero value is empty; build one with [NewSet]. It is safe for concurrent reads.
type Set struct{ m map[string]bool }

// NewSet returns the set of names.
func NewSet(names ...string) Set {
	s := Set{m: make(map[string]bool, len(names))}
	for _, n := range names {
		s.m[Normalize(n)] = true
	}
	return s
}

// Has reports whether name, in any spelling, is in the set. It does not
// allocate for names of up to 64 bytes.
func (s Set) Has(name string) bool {
	if len(s.m) == 0 {
		return false
	}
	var buf [64]byte
	if len(name) > len(buf) {
		return s.m[Normalize(name)]
	}
	return s.m[string(normalizeInto(buf[:0], name))]
}

// Names returns the normalised names in the set.
func (s Set) Names() []string {
	out := make([]string, 0, len(s.m))
	for k := range s.m {
		out = append(out, k)
	}
	return out
}

// Repeated returns the normalised name of a header in s that h carries more
// than once, in one spelling or several ("X-API-Key" and "X_API_Key"), or
// "" when there is none. It does not allocate when there is none.
func (s Set) Repeated(h http.Header) string {
	var seen [8]string
	n := 0
	for name, vs := range h {
		if !s.Has(name) {
			continue
		}
		if len(vs) > 1 {
			return Normalize(name)
		}
		if n == len(seen) {
			return Normalize(name) // that many credential headers is no honest request
		}
		seen[n] = name
		n++
	}
	for i := 1; i < n; i++ {
		a := Normalize(seen[i])
		for j := range i {
			if Normalize(seen[j]) == a {
				return a
			}
		}
	}
	return ""
}

// Remove deletes from h every header whose name, in any spelling, is in s.
func (s Set) Remove(h http.Header) {
	for name := range h {
		if s.Has(name) {
			delete(h, name)
		}
	}
}

// Without returns h when no header of h is in s, and otherwise a copy of h
// without them; h itself is never modified.
func (s Set) Without(h http.Header) http.Header {
	drop := 0
	for name := range h {
		if s.Has(name) {
			drop++
		}
	}
	if drop == 0 {
		return h
	}
	out := make(http.Header, len(h)-drop)
	for name, vs := range h {
		if !s.Has(name) {
			out[name] = vs
		}
	}
	return out
}

// TokenHeaders are the headers in which authenticating proxies pass the
// caller's access token on (OAuth2-Proxy's pass_access_token). They carry a
// credential, like Authorization, and are identity headers too.
var TokenHeaders = []string{"X-Auth-Request-Access-Token", "X-Forwarded-Access-Token"}
