package authn

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/regoguard/regoguard/internal/testissuer"
)

// Issue #14, weakness 6: the SHA-256 of an empty key, as `printf %s "$KEY" |
// sha256sum` prints it when $KEY is unset, is refused at load with the file
// and line; and a key that is blank once trimmed is no credential.
func TestAPIKeyEmptyDigestIsRefusedAtLoad(t *testing.T) {
	for _, blank := range []string{"", "\n", "\r\n", " ", "\t", " \n"} {
		d := sha256.Sum256([]byte(blank))
		text := "keys:\n  - key: real-key-0123456789abc\n    subject: alice\n  - key: sha256:" + hex.EncodeToString(d[:]) + "\n    subject: ghost\n"
		_, err := ParseAPIKeys("keys.yaml", []byte(text))
		if err == nil || !strings.Contains(err.Error(), "keys.yaml:4") || !strings.Contains(err.Error(), "empty key") {
			t.Errorf("digest of %q: %v, want an error naming keys.yaml:4 and the empty key", blank, err)
		}
		_, err = NewAPIKeys(APIKeyConfig{Keys: []APIKey{{Key: "sha256:" + strings.ToUpper(hex.EncodeToString(d[:])), Subject: "ghost"}}})
		if err == nil || !strings.Contains(err.Error(), "ghost") {
			t.Errorf("NewAPIKeys with the digest of %q: %v, want an error naming the key's subject", blank, err)
		}
	}
	for _, k := range []string{"", "   ", "\u00a0\u3000", "\u200b\u2003\ufeff"} {
		if _, err := NewAPIKeys(APIKeyConfig{Keys: []APIKey{{Key: k, Subject: "ghost"}}}); err == nil {
			t.Errorf("the blank key %q was accepted", k)
		}
	}
}

// The class: every blank a header can carry, and every way of padding a
// key, on both sides. A blank key is no credential; a padded key is the
// key; nothing else authenticates.
func TestAPIKeyTrimmingProbes(t *testing.T) {
	const key = "real-key-0123456789abc"
	a, err := NewAPIKeys(APIKeyConfig{Keys: []APIKey{
		{Key: "\u00a0" + key + " ", Subject: "alice"}, // padded in the file: trimmed the same way
		{Key: HashAPIKey("other-key-0123456789\u3000"), Subject: "bob"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	blanks := []string{"", " ", "\t", "\u00a0", "\u3000", "\u2000", "\u2003", "\u200a", "\u200b", "\u2028", "\u2029",
		"\u202f", "\u205f", "\u1680", "\u0085", "\ufeff", "\u00a0\u3000", " \t\u00a0 "}
	probes, through := 0, []string{}
	for _, b := range blanks {
		probes++
		r := httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-API-Key", b)
		if id, err := a.Authenticate(r); !errors.Is(err, ErrNoCredential) {
			through = append(through, fmt.Sprintf("blank %q: %v %v", b, id, err))
		}
		for _, pad := range [][2]string{{b, ""}, {"", b}, {b, b}} {
			for _, k := range []struct{ key, sub string }{{key, "alice"}, {"other-key-0123456789", "bob"}} {
				probes++
				r := httptest.NewRequest("GET", "/", nil)
				r.Header.Set("X-API-Key", pad[0]+k.key+pad[1])
				if id, err := a.Authenticate(r); err != nil || id.Subject != k.sub {
					through = append(through, fmt.Sprintf("padded %q: %v %v", pad[0]+k.key+pad[1], id, err))
				}
			}
		}
		probes++
		r = httptest.NewRequest("GET", "/", nil)
		r.Header.Set("X-API-Key", key+b+"x")
		if id, err := a.Authenticate(r); err == nil {
			through = append(through, fmt.Sprintf("a different key %q authenticated as %v", key+b+"x", id))
		}
	}
	// Repeated keys, in one spelling or several, are refused.
	for _, names := range [][2]string{{"X-API-Key", "X-API-Key"}, {"X-API-Key", "X_API_Key"}, {"X-API-Key", "x_api_key"}, {"X-Api-Key", "X-API_KEY"}} {
		probes++
		r := httptest.NewRequest("GET", "/", nil)
		r.Header[names[0]] = append(r.Header[names[0]], key)
		r.Header[names[1]] = append(r.Header[names[1]], "forged-0123456789abcdef")
		if id, err := a.Authenticate(r); err == nil {
			through = append(through, fmt.Sprintf("repeated %v authenticated as %v", names, id))
		}
	}
	t.Logf("%d API-key trimming probes", probes)
	if len(through) > 0 {
		t.Errorf("%d of %d API-key probes let through what must not pass: %s", len(through), probes, strings.Join(through, "; "))
	}
}

// Issue #14, weakness 11 on the library side: what ForwardedIdentity writes,
// ProxyHeaders reads back as the same identity, and whatever would read back
// as something else is refused by the writer. The reader refuses what the
// writer never emits.
func TestForwardedIdentityReadsBackAsWritten(t *testing.T) {
	p, err := NewProxyHeaders(ProxyConfig{TrustedCIDRs: []string{"127.0.0.1/32"}})
	if err != nil {
		t.Fatal(err)
	}
	odd := []string{"a,b", "a, b", ",", " a", "a ", "\ta", "a\n", "a\r\nX-Auth-Request-Groups: admins", "a\x00", "\x7f",
		"a\u0085", "\u00a0a", "a\u3000", "a\u2028b", "\ufeffa", "\xff", "\xc0\xae", "", " ", "admins,", ",admins"}
	fine := []string{"readers", "Domain Users", "a;b", "a=b", "ünïcödé", "a/b", "a\"b", "team:ops", "a.b@example.com"}
	var ids []*Identity
	for _, v := range append(append([]string{}, odd...), fine...) {
		ids = append(ids,
			&Identity{Subject: v, Method: MethodOIDC},
			&Identity{Subject: "u", Method: MethodOIDC, Claims: map[string]any{"email": v}},
			&Identity{Subject: "u", Method: MethodOIDC, Claims: map[string]any{"groups": []any{v}}},
			&Identity{Subject: "u", Method: MethodOIDC, Claims: map[string]any{"groups": []any{"readers", v}}},
			&Identity{Subject: "u", Method: MethodOIDC, Claims: map[string]any{"groups": v}},
		)
	}
	ids = append(ids, &Identity{Subject: "u", Claims: map[string]any{"groups": []any{"a", 1}}},
		&Identity{Subject: "u", Claims: map[string]any{"groups": map[string]any{"a": true}}})
	probes, wrong := 0, []string{}
	for _, id := range ids {
		probes++
		h, err := ForwardedIdentity(id, ForwardOptions{})
		if err != nil {
			if !errors.Is(err, ErrUnrepresentable) {
				wrong = append(wrong, fmt.Sprintf("%v: error %v does not wrap ErrUnrepresentable", id.Claims, err))
			}
			continue
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "127.0.0.1:1"
		for k, v := range h {
			r.Header[k] = v
		}
		back, err := p.Authenticate(r)
		if err != nil {
			wrong = append(wrong, fmt.Sprintf("%q %v written as %v, read back as error %v", id.Subject, id.Claims, h, err))
			continue
		}
		if back.Subject != id.Subject || !sameEmail(id, back) || !sameGroups(id, back) {
			wrong = append(wrong, fmt.Sprintf("%q %v written as %v, read back as %q %v", id.Subject, id.Claims, h, back.Subject, back.Claims))
		}
	}
	// The reader's side: values the writer never emits are refused.
	for _, v := range []string{"a,b", "a\x00", "a\x7f", "\xff", "a\u2028b", "a\u0085"} {
		for _, name := range []string{"X-Auth-Request-User", "X-Auth-Request-Email", "X-Forwarded-User"} {
			probes++
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = "127.0.0.1:1"
			r.Header.Set("X-Auth-Request-User", "u")
			r.Header.Set(name, v)
			if id, err := p.Authenticate(r); err == nil {
				wrong = append(wrong, fmt.Sprintf("reader accepted %s: %q as %v %v", name, v, id, id.Claims))
			}
		}
	}
	t.Logf("%d identity header round-trip probes", probes)
	if len(wrong) > 0 {
		t.Errorf("%d of %d identities read back as something else: %s", len(wrong), probes, strings.Join(wrong, "\n"))
	}
}

func sameEmail(a, b *Identity) bool {
	ea, _ := a.Claims["email"].(string)
	eb, _ := b.Claims["email"].(string)
	return ea == eb
}

func sameGroups(a, b *Identity) bool {
	ga, _ := groupList(a.Claims["groups"])
	gb, _ := groupList(b.Claims["groups"])
	return len(ga) == 0 && len(gb) == 0 || reflect.DeepEqual(ga, gb)
}

// Issue #14, weakness 10: an email the provider says is unverified is not
// the caller's email, unless the operator says so.
func TestBearerDropsUnverifiedEmail(t *testing.T) {
	iss := testissuer.Start(t)
	strict, err := NewBearer(BearerConfig{Issuer: iss.URL, ClientID: iss.ClientID})
	if err != nil {
		t.Fatal(err)
	}
	lax, err := NewBearer(BearerConfig{Issuer: iss.URL, ClientID: iss.ClientID, AllowUnverifiedEmail: true})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		verified any
		keep     bool
	}{{false, false}, {"false", false}, {"FALSE", false}, {true, true}, {"true", true}, {nil, true}}
	for _, c := range cases {
		extra := map[string]any{"email": "boss@example.com"}
		if c.verified != nil {
			extra["email_verified"] = c.verified
		}
		tok := iss.Token(t, "mallory", extra)
		id, err := strict.Authenticate(bearerRequest(tok))
		if err != nil {
			t.Fatalf("email_verified %v: %v", c.verified, err)
		}
		if _, has := id.Claims["email"]; has != c.keep {
			t.Errorf("email_verified %v: email kept %v, want %v", c.verified, has, c.keep)
		}
		if h, err := ForwardedIdentity(id, ForwardOptions{}); err != nil || (h.Get("X-Auth-Request-Email") != "") != c.keep {
			t.Errorf("email_verified %v: forwarded %v %v", c.verified, h, err)
		}
		if id, err := lax.Authenticate(bearerRequest(tok)); err != nil || id.Claims["email"] != "boss@example.com" {
			t.Errorf("email_verified %v with AllowUnverifiedEmail: %v %v", c.verified, id, err)
		}
	}
	// The writer checks too, whichever authenticator made the identity.
	id := &Identity{Subject: "u", Claims: map[string]any{"email": "boss@example.com", "email_verified": false}}
	if h, _ := ForwardedIdentity(id, ForwardOptions{}); h.Get("X-Auth-Request-Email") != "" {
		t.Errorf("unverified email written: %v", h)
	}
	if h, _ := ForwardedIdentity(id, ForwardOptions{AllowUnverifiedEmail: true}); h.Get("X-Auth-Request-Email") != "boss@example.com" {
		t.Errorf("opt-in: unverified email not written: %v", h)
	}
}

// Issue #14, "also from the same probe": a token without sub, and nbf or iat
// later than ClockSkew allows, are refused; go-oidc's own nbf leeway (five
// minutes) no longer decides.
func TestBearerTimesAndSubject(t *testing.T) {
	iss := testissuer.Start(t)
	b, err := NewBearer(BearerConfig{Issuer: iss.URL, ClientID: iss.ClientID, ClockSkew: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	cases := []struct {
		name string
		edit func(map[string]any)
		ok   bool
	}{
		{"valid", func(map[string]any) {}, true},
		{"no sub", func(c map[string]any) { delete(c, "sub") }, false},
		{"empty sub", func(c map[string]any) { c["sub"] = "" }, false},
		{"nbf 2 minutes ahead", func(c map[string]any) { c["nbf"] = now.Add(2 * time.Minute).Unix() }, false},
		{"nbf 4 minutes ahead", func(c map[string]any) { c["nbf"] = now.Add(4 * time.Minute).Unix() }, false},
		{"nbf within the skew", func(c map[string]any) { c["nbf"] = now.Add(5 * time.Second).Unix() }, true},
		{"nbf past", func(c map[string]any) { c["nbf"] = now.Add(-time.Minute).Unix() }, true},
		{"iat 1 minute ahead", func(c map[string]any) { c["iat"] = now.Add(time.Minute).Unix() }, false},
		{"iat a day ahead", func(c map[string]any) { c["iat"] = now.Add(24 * time.Hour).Unix() }, false},
		{"iat within the skew", func(c map[string]any) { c["iat"] = now.Add(5 * time.Second).Unix() }, true},
		{"iat not a number", func(c map[string]any) { c["iat"] = "soon" }, false},
		{"nbf not a number", func(c map[string]any) { c["nbf"] = "soon" }, false},
		{"expired within the skew", func(c map[string]any) { c["exp"] = now.Add(-5 * time.Second).Unix() }, true},
		{"expired beyond the skew", func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }, false},
	}
	for _, c := range cases {
		claims := iss.Claims("alice")
		c.edit(claims)
		id, err := b.Authenticate(bearerRequest(iss.Sign(t, claims)))
		if c.ok && (err != nil || id.Subject != "alice") {
			t.Errorf("%s: refused: %v", c.name, err)
		}
		if !c.ok && err == nil {
			t.Errorf("%s: accepted as %v", c.name, id)
		}
	}
}

// Issue #14, weakness 4 in the library: a second Authorization header, and a
// bearer token beside an API key, are verified or refused.
func TestEveryCredentialIsVerified(t *testing.T) {
	iss := testissuer.Start(t)
	bearer, err := NewBearer(BearerConfig{Issuer: iss.URL, ClientID: iss.ClientID})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := NewAPIKeys(APIKeyConfig{Keys: []APIKey{{Key: "reader-key-0123456789", Subject: "reader"}}})
	if err != nil {
		t.Fatal(err)
	}
	chain := Chain{keys, bearer}
	good := iss.Token(t, "reader", nil)
	forged := forgeNone(map[string]any{"iss": iss.URL, "aud": iss.ClientID, "sub": "admin", "exp": time.Now().Add(time.Hour).Unix()})
	req := func(auth []string, key string) *http.Request {
		r := httptest.NewRequest("GET", "/", nil)
		if key != "" {
			r.Header.Set("X-API-Key", key)
		}
		r.Header["Authorization"] = auth
		return r
	}
	refused := []struct {
		name string
		r    *http.Request
	}{
		{"API key and a forged token", req([]string{"Bearer " + forged}, "reader-key-0123456789")},
		{"API key and a garbage token", req([]string{"Bearer x.y.z"}, "reader-key-0123456789")},
		{"a valid token then a forged one", req([]string{"Bearer " + good, "Bearer " + forged}, "")},
		{"two valid tokens", req([]string{"Bearer " + good, "Bearer " + good}, "")},
		{"a forged token then a valid one", req([]string{"Bearer " + forged, "Bearer " + good}, "")},
		{"a valid token and a bad API key", req([]string{"Bearer " + good}, "wrong-key-0123456789")},
	}
	for _, c := range refused {
		if id, err := chain.Authenticate(c.r); err == nil {
			t.Errorf("%s: authenticated as %v", c.name, id)
		}
	}
	if id, err := chain.Authenticate(req([]string{"Bearer " + good}, "reader-key-0123456789")); err != nil || id.Subject != "reader" {
		t.Errorf("a valid key and a valid token: %v %v", id, err)
	}
}

// forgeNone makes an unsigned ("alg": "none") JWT.
func forgeNone(claims map[string]any) string {
	return b64json(map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64json(claims) + "."
}

// Identity headers in every spelling are stripped from untrusted peers.
func TestStripIdentityHeadersEverySpelling(t *testing.T) {
	probes, left := 0, []string{}
	for _, canonical := range IdentityHeaders() {
		for _, name := range spellings(canonical) {
			probes++
			r := httptest.NewRequest("GET", "/", nil)
			r.Header[name] = []string{"admin"}
			StripIdentityHeaders(r)
			if len(r.Header) != 0 {
				left = append(left, name)
			}
		}
	}
	t.Logf("%d identity header spellings", probes)
	if len(left) > 0 {
		t.Errorf("%d of %d spellings survived StripIdentityHeaders: %q", len(left), probes, left)
	}
}

// spellings returns ways of writing a header name that CGI-style servers
// read as the same header.
func spellings(name string) []string {
	under := strings.ReplaceAll(name, "-", "_")
	out := []string{name, strings.ToLower(name), strings.ToUpper(name), under, strings.ToLower(under), strings.ToUpper(under),
		http.CanonicalHeaderKey(under)}
	if i := strings.Index(name, "-"); i >= 0 {
		out = append(out, name[:i]+"_"+name[i+1:]) // the first dash only: X_Auth-Request-User
	}
	if i := strings.LastIndex(name, "-"); i >= 0 {
		out = append(out, name[:i]+"_"+name[i+1:]) // the last dash only
	}
	return out
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// FuzzForwardedIdentityRoundTrip: for any subject, email and pair of
// groups, either the writer refuses the identity or the trusted-proxy
// reader reads back exactly the identity written.
func FuzzForwardedIdentityRoundTrip(f *testing.F) {
	f.Add("alice", "a@example.com", "readers", "admins")
	f.Add("a,b", "", "readers,admins", "")
	f.Add(" u", "e\u00a0", "g\x00", "\u2028")
	f.Add("u", "e", "\xc0\xae", "Domain Users")
	p, err := NewProxyHeaders(ProxyConfig{TrustedCIDRs: []string{"127.0.0.1/32"}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, sub, email, g1, g2 string) {
		id := &Identity{Subject: sub, Method: MethodOIDC, Claims: map[string]any{"email": email, "groups": []any{g1, g2}}}
		h, err := ForwardedIdentity(id, ForwardOptions{})
		if err != nil {
			return
		}
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "127.0.0.1:1"
		for k, v := range h {
			r.Header[k] = v
		}
		back, err := p.Authenticate(r)
		if err != nil {
			t.Fatalf("written as %q, refused by the reader: %v", h, err)
		}
		want := &Identity{Subject: sub, Claims: map[string]any{"groups": []any{g1, g2}}}
		if email != "" {
			want.Claims["email"] = email
		}
		if back.Subject != sub || !sameEmail(want, back) || !sameGroups(want, back) {
			t.Fatalf("%q %q %q %q written as %q, read back as %q %v", sub, email, g1, g2, h, back.Subject, back.Claims)
		}
	})
}
