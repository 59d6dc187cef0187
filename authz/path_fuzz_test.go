package authz_test

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/regoguard/regoguard/authz"
)

// lenientServer reads a raw path the way the most lenient common servers
// do, all at once: it strips ";params" from each segment (Tomcat, Jetty,
// Spring), decodes up to three times (double-decoding proxies and IIS),
// reads "\" as "/" (IIS), folds full-width dots and slashes (NFKC), drops
// what follows a NUL (C strings), trims trailing dots and blanks (Windows)
// and resolves dot segments. It returns the segments it serves.
func lenientServer(raw string) []string {
	var out []string
	for _, seg := range strings.Split(strings.TrimPrefix(raw, "/"), "/") {
		for range 3 {
			if i := strings.IndexByte(seg, ';'); i >= 0 {
				seg = seg[:i]
			}
			if dec, err := url.PathUnescape(seg); err == nil {
				seg = dec
			}
		}
		if i := strings.IndexByte(seg, ';'); i >= 0 {
			seg = seg[:i]
		}
		seg = strings.NewReplacer("\uff0e", ".", "\uff0f", "/", "\uff3c", "/", "\\", "/").Replace(seg)
		if i := strings.IndexByte(seg, 0); i >= 0 {
			seg = seg[:i]
		}
		for _, part := range strings.Split(seg, "/") {
			if trimmed := strings.TrimRight(part, ". \t"); trimmed == "" && part != "" {
				part = strings.Repeat(".", min(2, len(part)))
			}
			switch part {
			case "", ".":
			case "..":
				if len(out) > 0 {
					out = out[:len(out)-1]
				}
			default:
				out = append(out, part)
			}
		}
	}
	return out
}

// FuzzPathIsReadAlikeEverywhere: whatever path reaches the handler, the
// most lenient server serves the same segments as the policy judged (the
// decoded path, without its ";params"): no path is one thing to the policy
// and another to the upstream.
func FuzzPathIsReadAlikeEverywhere(f *testing.F) {
	for _, p := range []string{"/public/x", "/public/..;/admin", "/public/%2e%2e/admin", "/public/%252e%252e/admin",
		"/public/.../admin", "/public/a;b/c", "/public/%ef%bc%8e%ef%bc%8e/admin", "/public/a%00/../admin", "/public/a%5c..%5cadmin"} {
		f.Add(p)
	}
	m, err := authz.New(authz.Config{Authenticator: testAuth, Evaluator: fuzzEngine, AllowAnonymous: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, target string) {
		if !strings.HasPrefix(target, "/") || strings.ContainsAny(target, " ?#\r\n") {
			return
		}
		r, err := http.ReadRequest(bufio.NewReader(strings.NewReader("GET " + target + " HTTP/1.1\r\nHost: a\r\n\r\n")))
		if err != nil {
			return
		}
		var judged string
		h := m.Handler(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { judged = r.URL.Path }))
		h.ServeHTTP(httptest.NewRecorder(), r)
		if judged == "" {
			return // refused
		}
		var policy []string
		for _, seg := range strings.Split(strings.TrimPrefix(judged, "/"), "/") {
			if i := strings.IndexByte(seg, ';'); i >= 0 {
				seg = seg[:i]
			}
			if seg != "" {
				policy = append(policy, seg)
			}
		}
		served := lenientServer(r.URL.EscapedPath())
		if strings.Join(policy, "/") != strings.Join(served, "/") && utf8.ValidString(judged) {
			t.Fatalf("%q: the policy judged %q, a lenient server serves %q", target, policy, served)
		}
	})
}
