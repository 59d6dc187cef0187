package authz_test

import (
	"net/http/httptest"
	"testing"

	"github.com/regoguard/regoguard/authz"
)

// BenchmarkInput measures building the policy input for a typical API
// request, the middleware's own share of a decision.
func BenchmarkInput(b *testing.B) {
	m, err := authz.New(authz.Config{Authenticator: testAuth, Evaluator: fuzzEngine})
	if err != nil {
		b.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/api/v1/orders/42?expand=items&page=2", nil)
	r.Header.Set("Accept", "application/json")
	r.Header.Set("User-Agent", "bench/1.0")
	r.Header.Set("X-Request-Id", "f81d4fae-7dec-11d0-a765-00a0c91e6bf6")
	id := mustIdentity(b, "alice;staff,admin")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := m.Input(r, id); err != nil {
			b.Fatal(err)
		}
	}
}
