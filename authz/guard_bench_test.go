package authz_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/regoguard/regoguard/authz"
)

// BenchmarkGuardAllowed measures a whole allowed request through the
// middleware, with the credential and identity headers whose handling issue
// #14 changed (scanned for repeats, removed before the handler).
func BenchmarkGuardAllowed(b *testing.B) {
	m, err := authz.New(authz.Config{Authenticator: testAuth, Evaluator: fuzzEngine})
	if err != nil {
		b.Fatal(err)
	}
	h := m.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	r := httptest.NewRequest("GET", "/api/v1/orders/42?expand=items&page=2", nil)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "bench/1.0")
	r.Header.Set("X-Request-Id", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
	r.Header.Set("X-Test-User", "alice")
	r.Header.Set("Authorization", "Bearer not-read-by-the-test-authenticator")
	w := httptest.NewRecorder()
	b.ReportAllocs()
	for b.Loop() {
		h.ServeHTTP(w, r)
	}
}
