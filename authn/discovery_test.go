package authn_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/regoguard/regoguard/authn"
)

// A slow identity provider delays only the callers that need it, each no
// longer than its own context allows: discovery no longer holds a lock that
// every other caller queues behind. A provider that answers slowly on
// purpose is a fault no real provider here produces on demand, so this one
// is a bare discovery document served late.
func TestSlowDiscoveryDoesNotStallOtherCallers(t *testing.T) {
	release := make(chan struct{})
	arrived := make(chan struct{}, 10)
	var fetches atomic.Int64
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/.well-known/openid-configuration" {
			http.NotFound(w, r)
			return
		}
		fetches.Add(1)
		arrived <- struct{}{}
		select {
		case <-release:
		case <-time.After(10 * time.Second):
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": srv.URL, "jwks_uri": srv.URL + "/keys",
			"authorization_endpoint": srv.URL + "/auth", "token_endpoint": srv.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	}))
	defer srv.Close()
	b, err := authn.NewBearer(authn.BearerConfig{Issuer: srv.URL, ClientID: "app"})
	if err != nil {
		t.Fatal(err)
	}

	first := make(chan error, 1)
	go func() { first <- b.Discover(context.Background()) }()
	<-arrived

	// While the first discovery hangs, others give up when their context
	// ends, and do not start a second fetch.
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		start := time.Now()
		_, err := b.Verify(ctx, "a.b.c")
		cancel()
		if elapsed := time.Since(start); elapsed > 2*time.Second {
			t.Fatalf("a caller waited %v behind the slow discovery", elapsed)
		}
		if !errors.Is(err, authn.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("during a slow discovery: %v, want ErrUnavailable and the caller's deadline", err)
		}
	}
	close(release)
	if err := <-first; err != nil {
		t.Fatalf("the discovery itself: %v", err)
	}
	if _, err := b.Verify(context.Background(), "a.b.c"); err == nil || errors.Is(err, authn.ErrUnavailable) {
		t.Errorf("after discovery, a garbage token: %v, want a refusal of the token", err)
	}
	if n := fetches.Load(); n != 1 {
		t.Errorf("%d discovery fetches, want 1", n)
	}
}
