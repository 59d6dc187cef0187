// Command oidc protects a net/http service with an OpenID Connect browser
// login, configured from the environment names of fastapi-opa deployments:
//
//	APP_URI             public base URL of this application (the redirect URI
//	                    registered at the provider is $APP_URI/oauth2/callback)
//	OIDC_WELL_KNOWN     the provider's .well-known/openid-configuration URL
//	OIDC_CLIENT_ID      this application's client ID at the provider
//	OIDC_CLIENT_SECRET  its client secret
//	SESSION_KEY         32 bytes in hex sealing the session cookie (optional:
//	                    a random key, and sessions lost on restart, otherwise)
//
// Browsers are sent to the provider to log in and come back with a session
// cookie; API clients may send the provider's tokens as
// "Authorization: Bearer". The policy is fastapi-opa's getting-started
// policy, in the fastapi-opa input layout.
//
//	APP_URI=http://localhost:4000 OIDC_WELL_KNOWN=... OIDC_CLIENT_ID=... OIDC_CLIENT_SECRET=... \
//	    go run ./examples/oidc -listen 127.0.0.1:4000
package main

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"time"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

//go:embed policy
var policyFiles embed.FS

// config is the example's configuration, read from the environment.
type config struct {
	AppURI, WellKnown, ClientID, ClientSecret string
	// SessionKey seals the session cookie.
	SessionKey []byte
}

// configFromEnv reads the configuration through getenv (os.Getenv).
func configFromEnv(getenv func(string) string) (config, error) {
	cfg := config{
		AppURI:       getenv("APP_URI"),
		WellKnown:    getenv("OIDC_WELL_KNOWN"),
		ClientID:     getenv("OIDC_CLIENT_ID"),
		ClientSecret: getenv("OIDC_CLIENT_SECRET"),
	}
	for name, v := range map[string]string{"APP_URI": cfg.AppURI, "OIDC_WELL_KNOWN": cfg.WellKnown, "OIDC_CLIENT_ID": cfg.ClientID} {
		if v == "" {
			return cfg, fmt.Errorf("%s is not set", name)
		}
	}
	if k := getenv("SESSION_KEY"); k != "" {
		key, err := hex.DecodeString(k)
		if err != nil {
			return cfg, fmt.Errorf("SESSION_KEY: not hex: %w", err)
		}
		cfg.SessionKey = key
	} else {
		slog.Warn("SESSION_KEY is not set: sessions are sealed with a random key and lost on restart")
		cfg.SessionKey = make([]byte, 32)
		_, _ = rand.Read(cfg.SessionKey)
	}
	return cfg, nil
}

func main() {
	addr := flag.String("listen", "127.0.0.1:4000", "address to listen on")
	flag.Parse()
	cfg, err := configFromEnv(os.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on http://%s; open %s/finance/salary/<your sub>", ln.Addr(), cfg.AppURI)
	if err := run(ctx, ln, cfg); err != nil {
		log.Fatal(err)
	}
}

// run serves the protected application on ln until ctx is done.
func run(ctx context.Context, ln net.Listener, cfg config) error {
	handler, err := newHandler(ctx, cfg)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Shutdown(context.Background())
	}()
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// authenticators returns the browser login and, for API clients, bearer
// tokens from the same provider (fastapi-opa's accepted_methods: ID tokens,
// and access tokens checked at the userinfo endpoint).
func authenticators(cfg config) (*authn.Browser, *authn.Bearer, error) {
	u, err := url.Parse(cfg.AppURI)
	if err != nil {
		return nil, nil, fmt.Errorf("APP_URI: %w", err)
	}
	browser, err := authn.NewBrowser(authn.BrowserConfig{
		Issuer:       cfg.WellKnown,
		ClientID:     cfg.ClientID,
		ClientSecret: cfg.ClientSecret,
		AppURI:       cfg.AppURI,
		CookieKeys:   [][]byte{cfg.SessionKey},
		// Refused by NewBrowser unless APP_URI is http on a loopback host.
		InsecureCookies: u.Scheme == "http",
	})
	if err != nil {
		return nil, nil, err
	}
	bearer, err := authn.NewBearer(authn.BearerConfig{
		Issuer:             cfg.WellKnown,
		ClientID:           cfg.ClientID,
		OpaqueAccessTokens: true,
	})
	if err != nil {
		return nil, nil, err
	}
	return browser, bearer, nil
}

func newHandler(ctx context.Context, cfg config) (http.Handler, error) {
	p, err := policy.LoadFS(policyFiles, "policy")
	if err != nil {
		return nil, err
	}
	engine, err := policy.New(ctx, policy.Config{}, p)
	if err != nil {
		return nil, err
	}
	browser, bearer, err := authenticators(cfg)
	if err != nil {
		return nil, err
	}
	guard, err := authz.New(authz.Config{
		Authenticator: authn.Chain{bearer, browser},
		Evaluator:     engine,
		Layout:        authz.LayoutFastAPIOPA,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /finance/salary/{name}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"msg": "success", "name": r.PathValue("name")})
	})
	// The browser middleware serves /oauth2/login, /oauth2/callback and
	// /oauth2/logout and loads sessions; it goes outside the guard.
	return browser.Middleware(guard.Handler(mux)), nil
}
