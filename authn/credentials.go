package authn

import "slices"

// Credentials names the places in a request where an [Authenticator] reads
// a credential: headers, cookies and query parameters. A middleware takes
// the list from the authenticator ([CredentialsOf]) rather than from a
// configuration of its own, so that a custom name (an API key in X-Auth,
// a session cookie called sid) is one fact with one owner: the middleware
// keeps what is listed out of the policy input, the decision log and the
// access log, refuses it when repeated, and removes it before the request
// reaches the application or upstream (unless told to forward
// credentials).
type Credentials struct {
	// Headers are header names, compared in any spelling (case-folded, "_"
	// read as "-", as CGI-style servers merge them).
	Headers []string
	// Cookies are cookie names, compared exactly; a session split across
	// several cookies (Name, Name.1, Name.2, ...) is named once.
	Cookies []string
	// Query are query parameter names, compared exactly.
	Query []string
}

// A CredentialReader is an [Authenticator] that says where it reads its
// credentials. Every authenticator of this package and of package
// authn/saml is one, and so is a [Chain] (the union of its members'). An
// authenticator of your own that reads a credential from anywhere but the
// Authorization header should be one too: what it does not declare, the
// middleware cannot keep out of logs and upstream requests.
type CredentialReader interface {
	Credentials() Credentials
}

// CredentialsOf returns where a reads credentials: a's Credentials when it
// is a [CredentialReader], nothing otherwise. The result is the caller's.
func CredentialsOf(a Authenticator) Credentials {
	r, ok := a.(CredentialReader)
	if !ok {
		return Credentials{}
	}
	c := r.Credentials()
	return Credentials{Headers: slices.Clone(c.Headers), Cookies: slices.Clone(c.Cookies), Query: slices.Clone(c.Query)}
}

// Credentials implements [CredentialReader]: the union of the chain's
// members' credentials.
func (c Chain) Credentials() Credentials {
	var all Credentials
	for _, a := range c {
		m := CredentialsOf(a)
		all.Headers = append(all.Headers, m.Headers...)
		all.Cookies = append(all.Cookies, m.Cookies...)
		all.Query = append(all.Query, m.Query...)
	}
	return all
}

// Credentials implements [CredentialReader]: the API-key header.
func (a *APIKeys) Credentials() Credentials { return Credentials{Headers: []string{a.header}} }

// Credentials implements [CredentialReader]: the Authorization header.
func (b *Bearer) Credentials() Credentials { return Credentials{Headers: []string{"Authorization"}} }

// Credentials implements [CredentialReader]: the session cookie
// (BrowserConfig.CookieName).
func (b *Browser) Credentials() Credentials { return Credentials{Cookies: []string{b.cfg.CookieName}} }

// Credentials implements [CredentialReader]: the access-token headers a
// trusted proxy passes on (X-Forwarded-Access-Token,
// X-Auth-Request-Access-Token). The identity headers it reads are no
// credentials: they are removed from every request that does not come from
// a trusted proxy, and from every request before the application.
func (p *ProxyHeaders) Credentials() Credentials {
	return Credentials{Headers: slices.Clone(tokenHeaders)}
}
