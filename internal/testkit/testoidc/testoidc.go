// Package testoidc starts a real OpenID Provider for tests: zitadel's example
// OP, in-process on a loopback port, with a login form and RS256 ID tokens.
package testoidc

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
	"golang.org/x/oauth2"
)

// The provider's built-in users (for an issuer on 127.0.0.1) and their
// password. zitadel gives User the subject "id1" and User2 "id2".
const (
	User     = "test-user@127.0.0.1"
	User2    = "test-user2"
	Password = "verysecure"
)

// OP is a running provider and the web client registered at it.
type OP struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	srv          *http.Server
}

// Stop shuts the provider down, as an outage would; it is also done when
// the test ends.
func (op *OP) Stop() { _ = op.srv.Close() }

// registerMu serialises storage.RegisterClients, which writes a
// package-level map.
var registerMu sync.Mutex

// StartZitadel starts the provider on 127.0.0.1:0 with a confidential web
// client allowed to redirect to redirectURIs, and stops it when the test
// ends.
func StartZitadel(tb testing.TB, redirectURIs ...string) *OP {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	issuer := "http://" + ln.Addr().String()
	op := &OP{Issuer: issuer, ClientID: "web-" + randHex(4), ClientSecret: "secret-" + randHex(8)}
	registerMu.Lock()
	storage.RegisterClients(storage.WebClient(op.ClientID, op.ClientSecret, redirectURIs...))
	st := storage.NewStorage(storage.NewUserStore(issuer))
	registerMu.Unlock()
	// A nil logger: a non-nil one calls slog.SetDefault.
	router := exampleop.SetupServer(issuer, st, nil, false)
	op.srv = &http.Server{Handler: router, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = op.srv.Serve(ln) }()
	tb.Cleanup(op.Stop)
	return op
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Login runs the authorization code flow (with PKCE) without a browser, as
// User: it submits the login form and exchanges the code for tokens.
func (op *OP) Login(t testing.TB, redirectURI string, scopes ...string) *oauth2.Token {
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
	resp, err = client.PostForm(op.Issuer+"/login/username", url.Values{"id": {reqID}, "username": {User}, "password": {Password}})
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
