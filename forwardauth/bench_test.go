package forwardauth_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/forwardauth"
	"github.com/regoguard/regoguard/internal/testissuer"
	"github.com/regoguard/regoguard/policy"
)

// BenchmarkBearerCheck is one forward-auth check of an RS256 bearer token,
// in-process: what a proxy's auth request costs regoguard.
func BenchmarkBearerCheck(b *testing.B) {
	iss := testissuer.Start(b)
	tok := iss.Token(b, "alice", map[string]any{"groups": []any{"staff"}})
	p, _ := policy.Parse(map[string]string{"p.rego": `package httpapi.authz
default allow := false
allow if { input.method == "GET"; "staff" in input.user.claims.groups }`}, nil)
	engine, err := policy.New(context.Background(), policy.Config{Logger: slog.New(slog.DiscardHandler)}, p)
	if err != nil {
		b.Fatal(err)
	}
	bearer, err := authn.NewBearer(authn.BearerConfig{Issuer: iss.URL, ClientID: iss.ClientID})
	if err != nil {
		b.Fatal(err)
	}
	guard, _ := authz.New(authz.Config{Authenticator: bearer, Evaluator: engine, Logger: slog.New(slog.DiscardHandler)})
	h, _ := forwardauth.New(forwardauth.Config{Guard: guard, TrustedProxies: []string{"192.0.2.0/24"}})
	r := httptest.NewRequest("GET", "/_auth", nil)
	r.RemoteAddr = "192.0.2.10:51234"
	r.Header.Set("X-Original-Method", "GET")
	r.Header.Set("X-Original-URI", "/api/x")
	r.Header.Set("Authorization", "Bearer "+tok)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
