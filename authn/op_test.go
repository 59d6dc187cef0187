package authn

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/oauth2-proxy/mockoidc"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/oauth2"
)

// This file starts real OpenID Providers on loopback ports for the tests:
// zitadel's example OP (login form, RS256 ID tokens, opaque access tokens)
// and mockoidc (JWT access tokens, a controllable clock).

const (
	opUser     = "test-user@127.0.0.1" // zitadel's built-in user for issuer host 127.0.0.1
	opPassword = "verysecure"
)

// registerMu serialises storage.RegisterClients, which writes a package-level map.
var registerMu sync.Mutex

type testOP struct {
	Issuer       string
	ClientID     string
	ClientSecret string
}

// startZitadel starts zitadel's example OpenID Provider on 127.0.0.1:0 with a
// confidential web client allowed to redirect to redirectURIs.
func startZitadel(t *testing.T, redirectURIs ...string) *testOP {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	op := &testOP{Issuer: issuer, ClientID: "web-" + randHex(4), ClientSecret: "secret-" + randHex(8)}
	registerMu.Lock()
	storage.RegisterClients(storage.WebClient(op.ClientID, op.ClientSecret, redirectURIs...))
	st := storage.NewStorage(storage.NewUserStore(issuer))
	registerMu.Unlock()
	router := exampleop.SetupServer(issuer, st, nil, false) // nil logger: a non-nil one calls slog.SetDefault
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return op
}

// zitadelLogin runs the authorization code flow against a zitadel OP without
// a browser: it submits the login form and exchanges the code.
func zitadelLogin(t *testing.T, op *testOP, redirectURI string, scopes ...string) *oauth2.Token {
	t.Helper()
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, op.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: op.ClientID, ClientSecret: op.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: redirectURI, Scopes: append([]string{oidc.ScopeOpenID}, scopes...)}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("st-"+randHex(8), oidc.Nonce("n-"+randHex(8)), oauth2.S256ChallengeOption(verifier))

	jar, _ := cookiejar.New(nil)
	client := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(req.URL.String(), redirectURI) {
			return http.ErrUseLastResponse
		}
		return nil
	}}
	resp, err := client.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	reqID := resp.Request.URL.Query().Get("authRequestID")
	if reqID == "" {
		t.Fatalf("no login page: ended at %s (%s)", resp.Request.URL, resp.Status)
	}
	resp, err = client.PostForm(op.Issuer+"/login/username", url.Values{"id": {reqID}, "username": {opUser}, "password": {opPassword}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := resp.Location()
	if err != nil {
		t.Fatalf("login did not redirect to the client: %s %v", resp.Status, err)
	}
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code in redirect %s", loc.Redacted())
	}
	tok, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// startMockOIDC starts mockoidc on 127.0.0.1:0.
func startMockOIDC(t *testing.T) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Shutdown() })
	return m
}

// mockTokens runs the code flow against mockoidc for user.
func mockTokens(t *testing.T, m *mockoidc.MockOIDC, user mockoidc.User) *oauth2.Token {
	t.Helper()
	if user != nil {
		m.QueueUser(user)
	}
	cfg := m.Config()
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

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
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
