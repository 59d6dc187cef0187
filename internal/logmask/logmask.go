// Package logmask masks credentials in the policy input before a decision
// event records it: query parameters whose names look like credentials
// (?access_token=, ?code=, ?X-Amz-Signature=, ?sig=...), the same
// parameters and the userinfo of URLs inside header or metadata values (an
// OAuth code in a Referer, a pre-signed URL in X-Original-URI), headers
// whose names look like credentials (when the operator let them into the
// input) and tokens carried in Sec-WebSocket-Protocol. What looks like a
// credential is one rule, [authn.LooksLikeCredential], for header names,
// gRPC metadata keys and query parameter names alike.
//
// A masked value is replaced, its key kept, as OPA's system.log.mask does
// with an upsert: the event still says that a credential was there.
package logmask

import (
	"net/url"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/internal/headers"
)

// Redacted replaces every masked value.
const Redacted = "**REDACTED**"

var (
	redactedTerm = ast.StringTerm(Redacted)
	keyQuery     = ast.StringTerm("query")
	keyHeaders   = ast.StringTerm("headers")
	keyMetadata  = ast.StringTerm("metadata")
)

// Input returns input with the credentials it holds masked, or input itself
// when there is nothing to mask. It never modifies input (whose terms the
// caller, and the policy's evaluation, may share): what changes is copied.
//
// It masks, in the input of the authorization middleware and of the gRPC
// interceptors:
//   - input.query: the values of parameters whose names look like
//     credentials, and credentials inside the other values that are URLs;
//   - input.headers and input.metadata: the values of names that look like
//     credentials (of Authorization, all but the scheme; of Cookie, the
//     cookies whose names look like credentials: see [Cookies]), credentials inside values that are URLs (Referer,
//     X-Original-URI, X-Forwarded-Uri...), and each entry of
//     Sec-WebSocket-Protocol that is not a protocol name.
func Input(input ast.Value) ast.Value {
	obj, ok := input.(ast.Object)
	if !ok {
		return input
	}
	var out ast.Object
	set := func(k *ast.Term, v ast.Value) {
		if out == nil {
			out = obj.Copy() // shallow: the terms not replaced are shared
		}
		out.Insert(k, ast.NewTerm(v))
	}
	if t := obj.Get(keyQuery); t != nil {
		if q, ok := t.Value.(ast.Object); ok {
			if m := query(q); m != nil {
				set(keyQuery, m)
			}
		}
	}
	for _, k := range []*ast.Term{keyHeaders, keyMetadata} {
		if t := obj.Get(k); t != nil {
			if h, ok := t.Value.(ast.Object); ok {
				if m := headerValues(h); m != nil {
					set(k, m)
				}
			}
		}
	}
	if out == nil {
		return input
	}
	return out
}

// query masks an input.query object ({name: [values]}); nil when nothing
// changes.
func query(q ast.Object) ast.Object {
	var out ast.Object
	q.Foreach(func(k, v *ast.Term) {
		name, _ := k.Value.(ast.String)
		var nv ast.Value
		if authn.LooksLikeCredential(string(name)) {
			nv = redactedTerm.Value
		} else {
			nv = mapStrings(v.Value, URL)
		}
		if nv != nil {
			if out == nil {
				out = q.Copy()
			}
			out.Insert(k, ast.NewTerm(nv))
		}
	})
	return out
}

// headerValues masks an input.headers or input.metadata object ({name: value});
// nil when nothing changes.
func headerValues(h ast.Object) ast.Object {
	var out ast.Object
	h.Foreach(func(k, v *ast.Term) {
		name, _ := k.Value.(ast.String)
		var nv ast.Value
		norm := headers.Normalize(string(name))
		switch {
		case norm == "cookie":
			nv = mapStrings(v.Value, Cookies)
		case norm == "authorization" || norm == "proxy-authorization":
			nv = mapStrings(v.Value, authorization)
		case authn.LooksLikeCredential(string(name)):
			nv = redactedTerm.Value
		case norm == "sec-websocket-protocol":
			nv = mapStrings(v.Value, WebSocketProtocols)
		default:
			nv = mapStrings(v.Value, URL)
		}
		if nv != nil {
			if out == nil {
				out = h.Copy()
			}
			out.Insert(k, ast.NewTerm(nv))
		}
	})
	return out
}

// mapStrings applies mask to a string, or to each string of an array; nil
// when nothing changes.
func mapStrings(v ast.Value, mask func(string) (string, bool)) ast.Value {
	switch v := v.(type) {
	case ast.String:
		if m, ok := mask(string(v)); ok {
			return ast.String(m)
		}
	case *ast.Array:
		var out []*ast.Term
		for i := range v.Len() {
			s, isString := v.Elem(i).Value.(ast.String)
			if !isString {
				continue
			}
			if m, ok := mask(string(s)); ok {
				if out == nil {
					out = make([]*ast.Term, v.Len())
					for j := range v.Len() {
						out[j] = v.Elem(j)
					}
				}
				out[i] = ast.StringTerm(m)
			}
		}
		if out != nil {
			return ast.NewArray(out...)
		}
	}
	return nil
}

// URL masks the credentials in s when it holds URLs (a header value may be
// a list of them): the userinfo, and the values of query parameters whose
// names look like credentials ([authn.LooksLikeCredential]), the names
// kept. It reports whether it changed anything.
func URL(s string) (string, bool) {
	if !strings.ContainsAny(s, "?#@") {
		return s, false
	}
	changed := false
	parts := strings.Split(s, ",")
	for i, p := range parts {
		if m, ok := oneURL(p); ok {
			parts[i], changed = m, true
		}
	}
	if !changed {
		return s, false
	}
	return strings.Join(parts, ","), true
}

// oneURL masks one URL (absolute, or a path with a query).
func oneURL(s string) (string, bool) {
	lead := len(s) - len(strings.TrimLeft(s, " \t"))
	raw := strings.TrimSpace(s)
	changed := false
	// The userinfo, before the host: scheme://user:pw@host.
	if i := strings.Index(raw, "://"); i > 0 {
		rest := raw[i+3:]
		end := strings.IndexAny(rest, "/?#")
		if end < 0 {
			end = len(rest)
		}
		if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
			raw = raw[:i+3] + Redacted + rest[at:]
			changed = true
		}
	}
	// The query, and a fragment written as parameters (an implicit flow's
	// #access_token=...).
	q := strings.IndexAny(raw, "?#")
	if q < 0 {
		if !changed {
			return s, false
		}
		return s[:lead] + raw, true
	}
	var b strings.Builder
	b.WriteString(s[:lead])
	b.WriteString(raw[:q+1])
	rest := raw[q+1:]
	for rest != "" {
		end := strings.IndexAny(rest, "&#?")
		if end < 0 {
			end = len(rest)
		}
		p := rest[:end]
		name, _, hasValue := strings.Cut(p, "=")
		dec, err := url.QueryUnescape(name)
		if err != nil {
			dec = name
		}
		if hasValue && authn.LooksLikeCredential(dec) {
			p = name + "=" + Redacted
			changed = true
		}
		b.WriteString(p)
		if end < len(rest) {
			b.WriteByte(rest[end])
			end++
		}
		rest = rest[end:]
	}
	if !changed {
		return s, false
	}
	return b.String(), true
}

// Cookies masks the values of the cookies in a Cookie header whose names
// look like credentials ([authn.LooksLikeCredential], with "." read as "-",
// or holding "sess" or "sid": PHPSESSID, connect.sid, _gh_sess), keeping
// the others (theme=dark) and every name. It reports whether it changed
// anything.
func Cookies(s string) (string, bool) {
	parts := strings.Split(s, ";")
	changed := false
	for i, p := range parts {
		name, _, ok := strings.Cut(p, "=")
		n := strings.ToLower(strings.TrimSpace(name))
		if !ok || !(authn.LooksLikeCredential(strings.ReplaceAll(n, ".", "-")) || strings.Contains(n, "sess") || strings.Contains(n, "sid")) {
			continue
		}
		parts[i] = name + "=" + Redacted
		changed = true
	}
	if !changed {
		return s, false
	}
	return strings.Join(parts, ";"), true
}

// authorization keeps the scheme of an Authorization value and masks the
// rest ("Bearer **REDACTED**").
func authorization(s string) (string, bool) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(s), " ")
	if !ok || strings.TrimSpace(rest) == "" {
		return Redacted, true
	}
	return scheme + " " + Redacted, true
}

// WebSocketProtocols masks the entries of a Sec-WebSocket-Protocol value
// that are not protocol names (browsers cannot set Authorization on a
// WebSocket, so clients put tokens there: a JWT, Kubernetes'
// base64url.bearer.authorization.k8s.io.<token>, an opaque key). An entry
// is kept when it reads like a protocol name: at most 40 bytes of letters,
// digits and . - _ / +, whose words are short and not token-like (see
// nameWord: "graphql-transport-ws", "wamp.2.json", "v10.stomp",
// "base64.binary.k8s.io"), none of which looks like a credential
// ([authn.LooksLikeCredential]). It reports whether it changed
// anything.
func WebSocketProtocols(s string) (string, bool) {
	parts := strings.Split(s, ",")
	changed := false
	for i, p := range parts {
		t := strings.TrimSpace(p)
		if t == "" || protocolName(t) {
			continue
		}
		parts[i] = strings.Replace(p, t, Redacted, 1)
		changed = true
	}
	if !changed {
		return s, false
	}
	return strings.Join(parts, ","), true
}

func protocolName(t string) bool {
	if len(t) > 40 {
		return false
	}
	words := strings.FieldsFunc(t, func(r rune) bool { return r == '.' || r == '-' || r == '_' || r == '/' || r == '+' })
	if len(words) == 0 {
		return false
	}
	for _, w := range words {
		if !nameWord(w) || authn.LooksLikeCredential(w) {
			return false
		}
	}
	return true
}

// nameWord: at most 20 letters and digits, at most three of them digits,
// and at most one change from lower to upper case (a protocol name is
// "k8s", "wamp", "mqttv3", "MyProto"; a token's word is longer, or mixes
// digits and cases as base64 does).
func nameWord(w string) bool {
	if len(w) > 20 {
		return false
	}
	digits, humps := 0, 0
	for i := 0; i < len(w); i++ {
		c := w[i]
		switch {
		case c >= '0' && c <= '9':
			digits++
		case c >= 'A' && c <= 'Z':
			if i > 0 && w[i-1] >= 'a' && w[i-1] <= 'z' {
				humps++
			}
		case c >= 'a' && c <= 'z':
		default:
			return false
		}
	}
	return digits <= 3 && humps <= 1
}
