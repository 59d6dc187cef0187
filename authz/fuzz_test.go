package authz_test

import (
	"bufio"
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/regoguard/regoguard/authz"
)

// FuzzMiddleware sends arbitrary raw HTTP requests through the middleware.
// Whatever arrives, it must not panic, must answer with one of its own
// statuses, and must let a request through only when the policy, asked
// about exactly the path the handler sees, allowed it.
func FuzzMiddleware(f *testing.F) {
	for _, seed := range []string{
		"GET /public/x HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /api/x?a=1&a=2 HTTP/1.1\r\nHost: a\r\nX-Test-User: alice\r\n\r\n",
		"POST /api/x HTTP/1.1\r\nHost: a\r\nX-Test-User: alice\r\nContent-Type: application/json\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
		"POST /graphql HTTP/1.1\r\nHost: a\r\nX-Test-User: bob\r\nContent-Length: 20\r\n\r\n{\"query\":\"{ a { b }\"",
		"GET /public/../api HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /public%2F..%2Fapi HTTP/1.1\r\nHost: a\r\n\r\n",
		"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET http://evil/api/x HTTP/1.1\r\nHost: a\r\nX-Test-User: root;admin\r\n\r\n",
		// Issue #14's classes.
		"GET /public/..;/admin HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /public/%252e%252e;x=1/admin HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET /api/x HTTP/1.1\r\nHost: a\r\nX-Test-User: alice\r\nX_Auth_Request_Groups: admin\r\n\r\n",
		"POST /api/x HTTP/1.1\r\nHost: a\r\nX-Test-User: alice\r\nContent-Type: text/plain\r\nContent-Length: 7\r\n\r\n{\"a\":1}",
		"POST /api/x HTTP/1.1\r\nHost: a\r\nX-Test-User: alice\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"a\":1,\"a\":2}",
		"GET /api/x HTTP/1.1\r\nHost: a\r\nX-Test-User: alice\r\nAuthorization: a\r\nAuthorization: b\r\n\r\n",
	} {
		f.Add([]byte(seed))
	}
	allowed := map[int]bool{200: true, 400: true, 401: true, 403: true, 404: true, 413: true, 415: true, 503: true}
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil {
			return // not a request the server would accept either
		}
		r.RemoteAddr = "192.0.2.1:1"
		m, err := authz.New(authz.Config{
			Authenticator: testAuth, Evaluator: fuzzEngine, AllowAnonymous: true, Body: true, MaxBodyBytes: 256,
			Enrichers: []authz.Enricher{authz.GraphQLEnricher("")},
		})
		if err != nil {
			t.Fatal(err)
		}
		var sawPath string
		h := m.Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sawPath = r.URL.Path
			res, ok := authz.FromContext(r.Context())
			if !ok || !res.Decision.Allow {
				t.Fatalf("handler reached without an allow: %+v", res)
			}
			w.WriteHeader(200)
		}))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if !allowed[w.Code] {
			t.Fatalf("status %d for %q", w.Code, raw)
		}
		if w.Code == 200 {
			// The policy saw path_segments of this same path: check that it
			// allows it on its own terms.
			seg := strings.Split(strings.TrimPrefix(sawPath, "/"), "/")[0]
			user := r.Header.Get("X-Test-User")
			if seg != "public" && seg != "api" && !strings.Contains(user, "admin") {
				t.Fatalf("allowed %s %q as %q", r.Method, sawPath, user)
			}
		}
	})
}
