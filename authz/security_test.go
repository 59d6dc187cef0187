package authz_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
)

// The adversarial suites of issue #14, one per class, run against the
// library's middleware (cmd/regoguard's security tests run the same classes
// through the real serve binary). Each ends with the number of probes let
// through that must not have been: it must be zero.

// seenBy is a handler that records the request it got and what the policy
// saw (testdata/regoguard returns its input as "seen").
type seenBy struct {
	header http.Header
	input  map[string]any
	calls  int
}

func (s *seenBy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.calls++
	s.header = r.Header.Clone()
	s.input = nil
	if res, ok := authz.FromContext(r.Context()); ok {
		if m, isMap := res.Decision.Result.(map[string]any); isMap {
			s.input, _ = m["seen"].(map[string]any)
		}
	}
	w.WriteHeader(200)
}

func guard(t testing.TB, cfg authz.Config, next http.Handler) http.Handler {
	t.Helper()
	if cfg.Authenticator == nil {
		cfg.Authenticator = testAuth
	}
	if cfg.Evaluator == nil && !cfg.DisableAuthorization {
		cfg.Evaluator = engine(t, "testdata/regoguard")
	}
	m, err := authz.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m.Handler(next)
}

// spellings returns ways of writing a header name that CGI, WSGI, PHP and
// Rack servers read as the same header.
func spellings(name string) []string {
	under := strings.ReplaceAll(name, "-", "_")
	out := []string{name, strings.ToLower(name), strings.ToUpper(name), under, strings.ToLower(under),
		http.CanonicalHeaderKey(under)}
	if i := strings.Index(name, "-"); i >= 0 {
		out = append(out, name[:i]+"_"+name[i+1:])
	}
	if i := strings.LastIndex(name, "-"); i >= 0 {
		out = append(out, name[:i]+"_"+name[i+1:])
	}
	return out
}

func normal(name string) string { return strings.ReplaceAll(strings.ToLower(name), "_", "-") }

// Issue #14, weakness 1 (library): an identity header in any spelling
// reaches neither the policy input nor the handler, on allowed, skipped,
// anonymous and authentication-only requests alike.
func TestIdentityHeadersNeverReachInputOrHandler(t *testing.T) {
	identity := map[string]bool{}
	for _, h := range authn.IdentityHeaders() {
		identity[normal(h)] = true
	}
	rec := &seenBy{}
	setups := []struct {
		name string
		h    http.Handler
		req  func() *http.Request
	}{
		{"allowed", guard(t, authz.Config{}, rec), func() *http.Request { return request("GET", "/api/x", "alice") }},
		{"anonymous", guard(t, authz.Config{AllowAnonymous: true}, rec), func() *http.Request { return request("GET", "/public/x", "") }},
		{"skipped", guard(t, authz.Config{Skip: []authz.Skip{{Path: "/docs"}}}, rec), func() *http.Request { return request("GET", "/docs", "") }},
		{"authentication only", guard(t, authz.Config{DisableAuthorization: true}, rec), func() *http.Request { return request("GET", "/api/x", "alice") }},
	}
	probes, bad, leaks := 0, 0, []string{}
	for _, s := range setups {
		for _, canonical := range authn.IdentityHeaders() {
			for _, name := range spellings(canonical) {
				probes++
				before := len(leaks)
				r := s.req()
				r.Header[name] = []string{"admin"}
				rec.calls = 0
				w := httptest.NewRecorder()
				s.h.ServeHTTP(w, r)
				if rec.calls != 1 {
					leaks = append(leaks, fmt.Sprintf("%s %s: refused with %d", s.name, name, w.Code))
					continue
				}
				for k := range rec.header {
					if identity[normal(k)] {
						leaks = append(leaks, fmt.Sprintf("%s: the handler got %s", s.name, k))
					}
				}
				hs, _ := rec.input["headers"].(map[string]any)
				for k := range hs {
					if identity[normal(k)] {
						leaks = append(leaks, fmt.Sprintf("%s: the policy saw %s", s.name, k))
					}
				}
				if r.Header.Get(name) == "" && len(r.Header[name]) == 0 {
					leaks = append(leaks, fmt.Sprintf("%s: the caller's request was written to (%s removed)", s.name, name))
				}
				if len(leaks) > before {
					bad++
				}
			}
		}
	}
	t.Logf("%d identity-header probes", probes)
	if bad > 0 {
		t.Errorf("%d of %d identity-header probes got through: %s", bad, probes, strings.Join(leaks, "; "))
	}
}

// Issue #14, weaknesses 4 and 7 (library): credentials the middleware
// consumed are not handed on unless ForwardCredentials, token-bearing
// headers stay out of the input (and so out of decision logs), and a
// credential header sent twice, in one spelling or several, is refused.
func TestCredentialsStayOutOfInputAndHandler(t *testing.T) {
	rec := &seenBy{}
	strict := guard(t, authz.Config{}, rec)
	forward := guard(t, authz.Config{ForwardCredentials: true}, rec)
	consumed := []string{"Authorization", "Proxy-Authorization", "X-API-Key", "X-Forwarded-Access-Token", "X-Auth-Request-Access-Token"}
	tokenLike := []string{"X-Auth-Token", "X-Amz-Security-Token", "Api-Key", "X-Client-Secret", "X-Session-Id", "X-Id-Token",
		"X-Refresh-Token", "X-Password", "X-Credentials", "Cookie",
		// Credentials that the words above missed: proxies' signed
		// assertions (Cloudflare Access, Google IAP, AWS ALB), API-management
		// and cloud keys, request signatures.
		"Cf-Access-Jwt-Assertion", "X-Goog-Iap-Jwt-Assertion", "X-Amzn-Oidc-Data", "X-Jwt", "Ocp-Apim-Subscription-Key",
		"X-Functions-Key", "X-Auth-Key", "X-Access-Key", "X-Rapidapi-Key", "X-Hub-Signature-256", "X-Signature",
		"X-Bearer", "X-Authentication", "X-Hmac"}
	probes, bad, leaks := 0, 0, []string{}
	for _, canonical := range append(append([]string{}, consumed...), tokenLike...) {
		for _, name := range spellings(canonical) {
			probes++
			before := len(leaks)
			r := request("GET", "/api/x", "alice")
			r.Header[name] = []string{"secret-value"}
			rec.calls = 0
			strict.ServeHTTP(httptest.NewRecorder(), r)
			if rec.calls != 1 {
				leaks = append(leaks, fmt.Sprintf("%s: refused", name))
				continue
			}
			hs, _ := rec.input["headers"].(map[string]any)
			for k, v := range hs {
				if v == "secret-value" {
					leaks = append(leaks, fmt.Sprintf("the policy input holds %s", k))
				}
			}
			isConsumed := false
			for _, c := range consumed {
				isConsumed = isConsumed || normal(c) == normal(name)
			}
			for k := range rec.header {
				if isConsumed && normal(k) == normal(name) {
					leaks = append(leaks, fmt.Sprintf("the handler got the consumed credential %s", k))
				}
			}
			if isConsumed && name == http.CanonicalHeaderKey(name) && !authn.IsIdentityHeader(name) && name != "Proxy-Authorization" {
				probes++
				rec.calls = 0
				r := request("GET", "/api/x", "alice")
				r.Header[name] = []string{"secret-value"}
				forward.ServeHTTP(httptest.NewRecorder(), r)
				if rec.calls != 1 || rec.header.Get(name) != "secret-value" {
					leaks = append(leaks, fmt.Sprintf("ForwardCredentials did not forward %s", name))
				}
			}
			if len(leaks) > before {
				bad++
			}
		}
	}
	// Repeated credential headers.
	for _, pair := range [][2]string{{"Authorization", "Authorization"}, {"X-Api-Key", "X-Api-Key"}, {"X-Api-Key", "X_API_KEY"},
		{"X-Api-Key", "x_api_key"}, {"X-Forwarded-Access-Token", "X_Forwarded_Access_Token"}, {"Authorization", "AUTHORIZATION"}} {
		probes++
		r := request("GET", "/api/x", "alice")
		r.Header[pair[0]] = append(r.Header[pair[0]], "one")
		r.Header[pair[1]] = append(r.Header[pair[1]], "two")
		rec.calls = 0
		w := httptest.NewRecorder()
		strict.ServeHTTP(w, r)
		if rec.calls != 0 || w.Code != 401 {
			leaks = append(leaks, fmt.Sprintf("repeated %v: %d", pair, w.Code))
			bad++
		}
	}
	// Opting a credential back into the input still works.
	opt := guard(t, authz.Config{InputHeaders: []string{"X-Auth-Token"}}, rec)
	r := request("GET", "/api/x", "alice")
	r.Header.Set("X-Auth-Token", "t")
	opt.ServeHTTP(httptest.NewRecorder(), r)
	if hs, _ := rec.input["headers"].(map[string]any); hs["x-auth-token"] != "t" {
		t.Errorf("InputHeaders did not bring X-Auth-Token into the input: %v", hs)
	}
	t.Logf("%d credential-header probes", probes)
	if bad > 0 {
		t.Errorf("%d of %d credential-header probes got through: %s", bad, probes, strings.Join(leaks, "; "))
	}
}

// pathProbes returns request targets that some common server reads as
// another path than the one the policy judges: dot segments in every
// encoding, with and without ;params, encoded slashes and backslashes in
// every layer, NUL, overlong UTF-8 and Unicode look-alikes.
func pathProbes() []string {
	dots := []string{".", "..", "%2e", "%2E", "%2e%2e", "%2E%2E", "%2e%2E", ".%2e", "%2e.", ".%2E", "%252e", "%252e%252e",
		"%252E%252E", ".%252e", "%25252e%25252e", "...", "....", ".. ", "..%20", ". ", "..%09", "%c0%ae%c0%ae", "%c0%ae",
		"%e0%80%ae%e0%80%ae", "%ef%bc%8e%ef%bc%8e", "%ef%bc%8e", "%e2%80%a4%e2%80%a4", "..%00", "%2e%2e%00", "..%2500", "%20", "%20%20", ".%20", "%2520", "%2561dmin", "%2541"}
	params := []string{"", ";", ";x", ";x=1", ";jsessionid=0123", ";a;b", "%3b", "%3bx=1", "%253b", ";/"}
	var out []string
	for _, d := range dots {
		for _, p := range params {
			out = append(out, "/public/"+d+p+"/admin/x", "/public/x/"+d+p, "/public/"+d+p)
		}
	}
	for _, s := range []string{"%2f", "%2F", "%252f", "%25252f", "%5c", "%5C", "%255c", "%ef%bc%8f", "%ef%bc%bc", "%e2%88%95", "%00", "%0a", "%0d", "%7f", "%c0%af"} {
		out = append(out, "/public/a"+s+"..", "/public"+s+"admin", "/public/"+s+"/admin", "/public/x"+s)
	}
	for _, p := range []string{";x", ";", "%3bx", ";jsessionid=1"} {
		out = append(out, "/"+p+"/admin", "/public/"+p+"/../admin")
	}
	return out
}

// Issue #14, weakness 2 (library): no such path reaches the handler.
func TestPathProbesNeverReachTheHandler(t *testing.T) {
	rec := &seenBy{}
	h := guard(t, authz.Config{AllowAnonymous: true}, rec)
	probes, parserRefused, through := 0, 0, []string{}
	for _, target := range pathProbes() {
		probes++
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n")))
		if err != nil {
			parserRefused++ // Go's server answers 400 before any handler
			continue
		}
		rec.calls = 0
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if rec.calls != 0 {
			through = append(through, fmt.Sprintf("%s (%d)", target, w.Code))
		}
	}
	// Canonical look-alikes still pass: nothing is refused for nothing.
	for _, target := range []string{"/public/page;x=1", "/public/a.b", "/public/..a", "/public/a..", "/public/.well-known",
		"/public/%2e%2ea", "/public/100%25", "/public/a%20b", "/public/%E2%82%AC", "/public/x/"} {
		r := httptest.NewRequest("GET", target, nil)
		rec.calls = 0
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if rec.calls != 1 {
			t.Errorf("canonical path %s refused with %d", target, w.Code)
		}
	}
	t.Logf("%d path probes (%d refused by Go's request parser already)", probes, parserRefused)
	if len(through) > 0 {
		t.Errorf("%d of %d non-canonical paths reached the handler: %s", len(through), probes, strings.Join(through, " "))
	}
}

// Issue #14, weakness 5 (library): when the policy reads the body, a
// request reaches the handler only with a body the policy saw, parsed as
// every JSON reader parses it.
func TestBodyThePolicyCannotRead(t *testing.T) {
	rec := &seenBy{}
	h := guard(t, authz.Config{Body: true}, rec)
	types := []string{"", "text/plain", "text/json", "application/json;;", "application/json;", "application/json; charset=utf-16",
		"application/json; charset=latin1", "application/jsonx", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x",
		"application/json, text/plain", "json", "application/*", "*/*", "application/json; x=1", "text/html+json",
		"application/json", "APPLICATION/JSON", "application/json; charset=UTF-8", "application/vnd.api+json", "application/json ; charset=utf-8"}
	bodies := []string{`{"role":"reader"}`, `{"role":"reader","role":"admin"}`, `{"a":{"b":1,"b":2}}`, `[{"x":1,"x":1}]`,
		`{"role":"reader"} {"role":"admin"}`, `{"role":"reader"}x`, "\ufeff{\"role\":\"reader\"}", "{\"role\":\"\xff\"}",
		`{"role":`, `role=admin`, `"just a string"`, `1`, `null`, `  {"role":"reader"}  `}
	probes, through := 0, []string{}
	for _, ct := range types {
		for _, body := range bodies {
			for _, enc := range []string{"", "gzip", "identity"} {
				probes++
				r := request("POST", "/api/x", "alice")
				r.Body = http.NoBody
				r.Body = nopCloser{strings.NewReader(body)}
				r.ContentLength = int64(len(body))
				if ct != "" {
					r.Header.Set("Content-Type", ct)
				}
				if enc != "" {
					r.Header.Set("Content-Encoding", enc)
				}
				rec.calls = 0
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if rec.calls == 0 {
					if w.Code != 400 && w.Code != 415 {
						through = append(through, fmt.Sprintf("%q %q: refused with %d, want 400 or 415", ct, body, w.Code))
					}
					continue
				}
				var want any
				if err := json.NewDecoder(bytes.NewReader([]byte(body))).Decode(&want); err != nil {
					want = "<unparseable>"
				}
				if got, ok := rec.input["body"]; !ok || mustJSON(t, got) != mustJSON(t, want) || enc == "gzip" || strings.Count(body, `"role"`) > 1 || strings.Count(body, `"b"`) > 1 {
					through = append(through, fmt.Sprintf("%q %q %q: reached the handler, the policy saw %v", ct, body, enc, rec.input["body"]))
				}
			}
		}
	}
	// Two Content-Type headers: which one the upstream believes is anyone's guess.
	probes++
	r := request("POST", "/api/x", "alice")
	r.Body = nopCloser{strings.NewReader(`{"role":"reader"}`)}
	r.Header["Content-Type"] = []string{"application/json", "text/plain"}
	rec.calls = 0
	h.ServeHTTP(httptest.NewRecorder(), r)
	if rec.calls != 0 {
		through = append(through, "two Content-Type headers")
	}
	t.Logf("%d body probes", probes)
	if len(through) > 0 {
		t.Errorf("%d of %d body probes were judged on less than the handler reads:\n%s", len(through), probes, strings.Join(through, "\n"))
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

// Issue #14, "also": only a genuine CORS pre-flight is exempt: no body, no
// credential. Anything else is authenticated like any request.
func TestPreflightProbes(t *testing.T) {
	rec := &seenBy{}
	h := guard(t, authz.Config{AllowCORSPreflight: true}, rec)
	genuine := func() *http.Request {
		r := request("OPTIONS", "/api/x", "")
		r.Header.Set("Origin", "https://app.example")
		r.Header.Set("Access-Control-Request-Method", "DELETE")
		return r
	}
	rec.calls = 0
	h.ServeHTTP(httptest.NewRecorder(), genuine())
	if rec.calls != 1 {
		t.Fatal("a genuine pre-flight was not let through")
	}
	edits := map[string]func(*http.Request){
		"a body": func(r *http.Request) { r.Body = nopCloser{strings.NewReader("{}")}; r.ContentLength = 2 },
		"a chunked body": func(r *http.Request) {
			r.Body = nopCloser{strings.NewReader("{}")}
			r.ContentLength = -1
			r.TransferEncoding = []string{"chunked"}
		},
		"an unknown length":   func(r *http.Request) { r.Body = nopCloser{strings.NewReader("{}")}; r.ContentLength = -1 },
		"Authorization":       func(r *http.Request) { r.Header.Set("Authorization", "Bearer x") },
		"an API key":          func(r *http.Request) { r.Header.Set("X-API-Key", "k") },
		"an API key (_)":      func(r *http.Request) { r.Header["X_API_KEY"] = []string{"k"} },
		"a cookie":            func(r *http.Request) { r.Header.Set("Cookie", "s=1") },
		"an identity header":  func(r *http.Request) { r.Header["X_Auth_Request_User"] = []string{"admin"} },
		"a proxy token":       func(r *http.Request) { r.Header.Set("X-Forwarded-Access-Token", "t") },
		"no Origin":           func(r *http.Request) { r.Header.Del("Origin") },
		"no request method":   func(r *http.Request) { r.Header.Del("Access-Control-Request-Method") },
		"method GET":          func(r *http.Request) { r.Method = "GET" },
		"method POST":         func(r *http.Request) { r.Method = "POST" },
		"lower-case options":  func(r *http.Request) { r.Method = "options" },
		"empty Origin":        func(r *http.Request) { r.Header.Set("Origin", "") },
		"Proxy-Authorization": func(r *http.Request) { r.Header.Set("Proxy-Authorization", "Basic x") },
	}
	through := []string{}
	for name, edit := range edits {
		r := genuine()
		edit(r)
		rec.calls = 0
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if rec.calls != 0 {
			through = append(through, name)
		}
	}
	t.Logf("%d pre-flight probes", len(edits))
	if len(through) > 0 {
		t.Errorf("%d of %d non-genuine pre-flights skipped authentication: %v", len(through), len(edits), through)
	}
}

// upgradeProbes are Upgrade headers that turn the connection into one that
// carries HTTP requests of its own (h2c smuggling): once the upstream
// answers 101, the requests that follow on it never pass the guard.
func upgradeProbes() [][]string {
	var out [][]string
	for _, tok := range []string{"h2c", "H2C", "h2c-14", "h2", "HTTP/2.0", "http/1.1", "HTTPS/1.3", " h2c ", "h2c/1"} {
		out = append(out, []string{"Upgrade", tok})
		out = append(out, []string{"Upgrade", "websocket, " + tok})
		out = append(out, []string{"Upgrade", tok, "Upgrade", "websocket"})
	}
	out = append(out, []string{"Http2-Settings", "AAMAAABkAARAAAAAAAIAAAAA"})
	return out
}

// TestUpgradeToHTTPNeverReachesTheHandler: an allowed request, a skipped one
// and an anonymous one, each asking to upgrade to h2c or another HTTP, with
// and without Connection: Upgrade, must be refused (400) before the handler;
// a WebSocket upgrade is judged as any request.
func TestUpgradeToHTTPNeverReachesTheHandler(t *testing.T) {
	rec := &seenBy{}
	h := guard(t, authz.Config{Skip: []authz.Skip{{Path: "/public/x"}}, AllowAnonymous: true}, rec)
	probes, through := 0, 0
	for _, target := range []struct{ path, user string }{{"/api/x", "alice"}, {"/public/x", ""}, {"/api/x", ""}} {
		for _, hs := range upgradeProbes() {
			for _, conn := range []string{"Upgrade, HTTP2-Settings", "upgrade", ""} {
				probes++
				r := request("GET", target.path, target.user)
				for i := 0; i < len(hs); i += 2 {
					r.Header.Add(hs[i], hs[i+1])
				}
				if conn != "" {
					r.Header.Set("Connection", conn)
				}
				rec.calls = 0
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if rec.calls != 0 || w.Code != http.StatusBadRequest {
					through++
					if through <= 5 {
						t.Errorf("%s %v Connection %q: %d, handler called %d times", target.path, hs, conn, w.Code, rec.calls)
					}
				}
			}
		}
	}
	// WebSocket is judged as the request it arrives in.
	r := request("GET", "/api/x", "alice")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Connection", "Upgrade")
	rec.calls = 0
	h.ServeHTTP(httptest.NewRecorder(), r)
	if rec.calls != 1 {
		t.Errorf("an allowed WebSocket upgrade did not reach the handler")
	}
	t.Logf("upgrade probes: %d, let through: %d", probes, through)
	if through != 0 {
		t.Errorf("let through: %d (must be 0)", through)
	}
}
