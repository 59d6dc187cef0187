// Package testoidc starts a real OpenID Provider for tests: zitadel's example
// OP, in-process on a loopback port, with a login form and RS256 ID tokens.
package testoidc

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/example/server/exampleop"
	"github.com/zitadel/oidc/v3/example/server/storage"
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
}

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
	srv := &http.Server{Handler: router, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return op
}

func randHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
