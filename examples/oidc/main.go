// Command oidc protects a net/http service with an OpenID Connect browser
// login, configured from the environment names of fastapi-opa deployments,
// read by authn.ConfigFromEnv:
//
//	APP_URI                 public base URL of this application (the redirect
//	                        URI registered at the provider is $APP_URI/oauth2/callback)
//	OIDC_WELL_KNOWN         the provider's .well-known/openid-configuration URL
//	OIDC_CLIENT_ID          this application's client ID at the provider
//	OIDC_CLIENT_SECRET      its client secret
//	REGOGUARD_SESSION_KEYS  keys sealing the session cookie, comma-separated,
//	                        newest first; each 32 bytes or more, raw or as
//	                        "base64:<std base64>" (openssl rand -base64 32)
//
// Browsers are sent to the provider to log in and come back with a session
// cookie; API clients may send the provider's tokens as
// "Authorization: Bearer". The policy is fastapi-opa's getting-started
// policy, in the fastapi-opa input layout.
//
//	APP_URI=http://localhost:4000 OIDC_WELL_KNOWN=... OIDC_CLIENT_ID=... OIDC_CLIENT_SECRET=... \
//	REGOGUARD_SESSION_KEYS=base64:$(openssl rand -base64 32) go run ./examples/oidc -listen 127.0.0.1:4000
package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

//go:embed policy
var policyFiles embed.FS

// configFromEnv reads the configuration with lookup (os.LookupEnv): this
// example needs the browser flow, so APP_URI and a session key are required.
func configFromEnv(lookup func(string) (string, bool)) (*authn.EnvConfig, error) {
	cfg, err := authn.ConfigFromEnv(lookup)
	if err != nil {
		return nil, err
	}
	if cfg.Browser == nil {
		return nil, fmt.Errorf("%s and %s are required", authn.EnvWellKnown, authn.EnvAppURI)
	}
	// fastapi-opa's accepted_methods: ID tokens, and access tokens checked
	// at the userinfo endpoint.
	cfg.Bearer.OpaqueAccessTokens = true
	return cfg, nil
}

func main() {
	addr := flag.String("listen", "127.0.0.1:4000", "address to listen on")
	flag.Parse()
	cfg, err := configFromEnv(os.LookupEnv)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on http://%s; open %s/finance/salary/<your sub>", ln.Addr(), cfg.Browser.AppURI)
	if err := run(ctx, ln, cfg); err != nil {
		log.Fatal(err)
	}
}

// run serves the protected application on ln until ctx is done.
func run(ctx context.Context, ln net.Listener, cfg *authn.EnvConfig) error {
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

func newHandler(ctx context.Context, cfg *authn.EnvConfig) (http.Handler, error) {
	p, err := policy.LoadFS(policyFiles, "policy")
	if err != nil {
		return nil, err
	}
	engine, err := policy.New(ctx, policy.Config{}, p)
	if err != nil {
		return nil, err
	}
	// The browser login and, for API clients, bearer tokens from the same
	// provider.
	browser, err := authn.NewBrowser(*cfg.Browser)
	if err != nil {
		return nil, err
	}
	bearer, err := authn.NewBearer(*cfg.Bearer)
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
	// The guard mounts the browser flow's routes (/oauth2/login,
	// /oauth2/callback, /oauth2/logout) and loads sessions before
	// authorizing: no other wrapping.
	return guard.Handler(mux), nil
}
