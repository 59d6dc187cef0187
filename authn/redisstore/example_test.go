package redisstore_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"net"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/regoguard/regoguard/internal/testkit/testredis"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authn/redisstore"
)

// TestMain starts one redis-server for the examples, at REDIS_URL (the tests
// start their own). Without redis-server the package is skipped, except
// under CI, where that is a failure.
func TestMain(m *testing.M) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		if os.Getenv("CI") != "" {
			fmt.Fprintln(os.Stderr, "redis-server is not installed (apt-get install -y redis-server)")
			os.Exit(1)
		}
		fmt.Println("skipping: redis-server is not installed (apt-get install -y redis-server)")
		os.Exit(0)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	dir, err := os.MkdirTemp("", "redisstore")
	if err != nil {
		log.Fatal(err)
	}
	srv := exec.Command("redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir)
	if err := srv.Start(); err != nil {
		log.Fatal(err)
	}
	addr := "127.0.0.1:" + port
	for i := 0; i < 500 && !testredis.Ping(addr, nil); i++ {
		time.Sleep(20 * time.Millisecond)
	}
	os.Setenv("REDIS_URL", "redis://"+addr)
	code := m.Run()
	_ = srv.Process.Kill()
	_ = srv.Wait()
	os.RemoveAll(dir)
	os.Exit(code)
}

// Replicas of a service share their browser logins' state through one
// Redis: a session logged out on one is refused by all, and a login is
// used once across all of them.
func Example() {
	store, err := redisstore.New(redisstore.Config{
		URL:     os.Getenv("REDIS_URL"), // e.g. redis://redis:6379/0, rediss://..., redis+sentinel://s1,s2/mymaster
		Timeout: 500 * time.Millisecond, // past it, browser sessions get 503; API keys never wait
	})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// The store goes into the browser login (and saml.Config.Store);
	// SessionData keeps the sessions themselves in Redis too.
	_, err = authn.NewBrowser(authn.BrowserConfig{
		Issuer:        "https://idp.example",
		ClientID:      "app",
		SessionData:   store,
		SessionConfig: authn.SessionConfig{AppURI: "https://app.example", CookieKeys: [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, Store: store},
	})
	if err != nil {
		log.Fatal(err)
	}

	// What the login does with it, on any replica.
	ctx := context.Background()
	login := "oidc-login:" + rand.Text()
	first, _ := store.UseLogin(ctx, login, 10*time.Minute)
	replay, _ := store.UseLogin(ctx, login, 10*time.Minute)
	fmt.Println("first use:", first, "- replayed:", replay)

	session := "oidc-session:" + rand.Text()
	_ = store.Revoke(ctx, session, time.Hour)
	revoked, _ := store.Revoked(ctx, session)
	fmt.Println("logged out:", revoked)
	// Output:
	// first use: true - replayed: false
	// logged out: true
}
