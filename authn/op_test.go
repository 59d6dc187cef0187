package authn

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/regoguard/regoguard/authn/internal/testop"
)

// This file starts the module's own test provider, internal/testop (JWT
// access tokens, a controllable clock, knobs for provider faults), on
// loopback ports. The tests against zitadel's OP and in a real browser are
// in the e2e module.

// startMockOIDC starts the test provider on 127.0.0.1:0.
func startMockOIDC(t *testing.T) *testop.OP {
	t.Helper()
	return testop.Start(t)
}

// mockTokens runs the code flow against the test provider for user.
func mockTokens(t *testing.T, m *testop.OP, user *testop.User) *oauth2.Token {
	t.Helper()
	if user != nil {
		m.QueueUser(*user)
	}
	cfg := m.Config
	conf := oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, RedirectURL: "http://127.0.0.1:1/cb",
		Endpoint: oauth2.Endpoint{AuthURL: m.AuthorizationEndpoint(), TokenURL: m.TokenEndpoint(), AuthStyle: oauth2.AuthStyleInParams},
		Scopes:   []string{"openid", "email", "profile", "groups"}}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(conf.AuthCodeURL("state", oidc.Nonce("nonce")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("authorize: %s %v", resp.Status, err)
	}
	tok, err := conf.Exchange(context.Background(), loc.Query().Get("code"))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustNoCredential(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrNoCredential) {
		t.Fatalf("want ErrNoCredential, got %v", err)
	}
}

func mustRefuse(t *testing.T, id *Identity, err error) {
	t.Helper()
	if err == nil || errors.Is(err, ErrNoCredential) {
		t.Fatalf("want a refusal, got identity %v err %v", id, err)
	}
	if id != nil {
		t.Fatalf("refusal came with an identity %v", id)
	}
}
