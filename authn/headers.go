package authn

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/regoguard/regoguard/internal/headers"
)

// Header names are compared the way the servers behind a proxy compare them:
// CGI, WSGI, PHP and Rack turn "X-Auth-Request-User", "x_auth_request_user"
// and "X-Auth_Request-User" alike into HTTP_X_AUTH_REQUEST_USER. A header
// whose name matches an identity or credential header in that reading is
// treated as that header, whatever its spelling.

// LooksLikeCredential reports whether a header or gRPC metadata name, in
// any spelling, looks like it carries a credential: it holds one of the
// words token, secret, password, passwd, api-key, apikey, credential,
// session, cookie, authorization (X-Auth-Token, X-Amz-Security-Token,
// X-Session-Id), or one of its "-"-separated parts is jwt, assertion,
// signature, sig, bearer, authentication, hmac or oidc, or ends in "key"
// (Cf-Access-Jwt-Assertion, X-Goog-Iap-Jwt-Assertion, X-Amzn-Oidc-Data,
// Ocp-Apim-Subscription-Key, X-Auth-Key, X-Hub-Signature-256). The
// authorization middleware and the gRPC interceptors keep such names out of
// the policy input, and so out of decision logs, unless configured to read
// them.
func LooksLikeCredential(name string) bool {
	norm := headers.Normalize(name)
	for _, w := range credentialWords {
		if strings.Contains(norm, w) {
			return true
		}
	}
	for part := range strings.SplitSeq(norm, "-") {
		if strings.HasSuffix(part, "key") || slices.Contains(credentialParts, part) {
			return true
		}
	}
	return false
}

var (
	credentialWords = []string{"token", "secret", "password", "passwd", "api-key", "apikey", "credential", "session", "cookie", "authorization"}
	// Whole parts only, so that Keyboard-Layout or X-Design stay in.
	credentialParts = []string{"jwt", "assertion", "signature", "sig", "bearer", "authentication", "hmac", "oidc"}
)

// identitySet is every identity header, in any spelling.
var identitySet = headers.NewSet(IdentityHeaders()...)

// IsIdentityHeader reports whether name, in any spelling (case-folded, "_"
// read as "-"), is one of [IdentityHeaders].
func IsIdentityHeader(name string) bool { return identitySet.Has(name) }

// ErrUnrepresentable is returned by [ForwardedIdentity] for an identity that
// no header value can carry faithfully.
var ErrUnrepresentable = errors.New("authn: identity cannot be carried in a header")

// ForwardOptions tunes [ForwardedIdentity].
type ForwardOptions struct {
	// AllowUnverifiedEmail emits the email claim even when the identity's
	// email_verified claim is false. Off by default, as in OAuth2-Proxy.
	AllowUnverifiedEmail bool
}

// ForwardedIdentity returns the identity headers that carry id to an
// upstream service (X-Auth-Request-User, -Email, -Groups), in exactly the
// form [ProxyHeaders] reads them back. A value that would read back as
// something else (a group holding the "," separator, a subject holding ","
// that a proxy folding repeated headers would produce, control characters,
// leading or trailing blanks, invalid UTF-8, an empty group) is refused with
// an error wrapping [ErrUnrepresentable]: the request must then not be
// forwarded. An email whose email_verified claim is false is left out unless
// opts allows it. An anonymous caller (nil, or [MethodNone]) gets no header.
func ForwardedIdentity(id *Identity, opts ForwardOptions) (http.Header, error) {
	h := http.Header{}
	if id == nil || id.Method == MethodNone {
		return h, nil // anonymous: no identity to carry
	}
	if id.Subject == "" {
		return nil, fmt.Errorf("%w: empty subject", ErrUnrepresentable)
	}
	if err := checkHeaderValue(id.Subject); err != nil {
		return nil, fmt.Errorf("%w: subject: %v", ErrUnrepresentable, err)
	}
	h["X-Auth-Request-User"] = []string{id.Subject}
	if email, ok := id.Claims["email"].(string); ok && email != "" && (opts.AllowUnverifiedEmail || !EmailUnverified(id.Claims)) {
		if err := checkHeaderValue(email); err != nil {
			return nil, fmt.Errorf("%w: email: %v", ErrUnrepresentable, err)
		}
		h["X-Auth-Request-Email"] = []string{email}
	}
	if v, ok := id.Claims["groups"]; ok {
		groups, err := groupList(v)
		if err != nil {
			return nil, fmt.Errorf("%w: groups: %v", ErrUnrepresentable, err)
		}
		for _, g := range groups {
			if g == "" {
				return nil, fmt.Errorf("%w: an empty group name", ErrUnrepresentable)
			}
			if err := checkHeaderValue(g); err != nil {
				return nil, fmt.Errorf("%w: group %q: %v", ErrUnrepresentable, g, err)
			}
		}
		if len(groups) > 0 {
			h["X-Auth-Request-Groups"] = []string{strings.Join(groups, ",")}
		}
	}
	return h, nil
}

// groupList reads a groups claim: a list of strings (a single string is one
// group). Anything else is refused rather than silently dropped, since a
// dropped group may be the one that denies.
func groupList(v any) ([]string, error) {
	switch l := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{l}, nil
	case []string:
		return l, nil
	case []any:
		out := make([]string, 0, len(l))
		for _, x := range l {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf("a group of type %T", x)
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, fmt.Errorf("a groups claim of type %T", v)
}

// checkHeaderValue refuses what a header value cannot carry unambiguously:
// control characters (CR and LF split headers; NUL ends C strings), the ","
// that separates list elements and that proxies use to fold repeated
// headers, leading or trailing blanks (trimmed by every reader), and invalid
// UTF-8 (read differently by different decoders).
func checkHeaderValue(v string) error {
	if strings.TrimFunc(v, isBlank) != v {
		return errors.New("leading or trailing blanks")
	}
	if !utf8.ValidString(v) {
		return errors.New("invalid UTF-8")
	}
	for _, r := range v {
		switch {
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0):
			return errors.New("a control character")
		case r == ',':
			return errors.New(`the list separator ","`)
		case r == '\u2028' || r == '\u2029' || r == '\ufeff':
			return fmt.Errorf("the character %U", r)
		}
	}
	return nil
}

func isBlank(r rune) bool {
	return r == ' ' || r == '\t' || r == '\u00a0' || r == '\u3000' || r == '\u2028' || r == '\u2029' || r == '\ufeff' ||
		(r >= '\u2000' && r <= '\u200b') || r == '\u1680' || r == '\u202f' || r == '\u205f' || r == '\u0085'
}

// EmailUnverified reports whether claims say, in an email_verified claim,
// that the email was not verified: false, or the string "false" some
// providers send. An absent claim says nothing.
func EmailUnverified(claims map[string]any) bool {
	switch v := claims["email_verified"].(type) {
	case bool:
		return !v
	case string:
		return strings.EqualFold(strings.TrimSpace(v), "false")
	}
	return false
}
