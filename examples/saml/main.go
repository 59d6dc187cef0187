// Command saml protects a net/http service with a SAML 2.0 login: the
// application is a service provider of your identity provider, and the
// assertion's attributes reach the policy as the user's claims.
//
//	APP_URI             public base URL of this application
//	SAML_IDP_METADATA   the IdP's metadata: an http(s) URL or a file
//	SAML_SP_KEY         this service provider's private key (PEM file)
//	SAML_SP_CERT        its certificate (PEM file), uploaded to the IdP with
//	                    the metadata served at $APP_URI/saml/metadata
//	SESSION_KEY         32 bytes in hex sealing the session cookie (optional:
//	                    a random key, and sessions lost on restart, otherwise)
//
//	openssl req -new -x509 -days 365 -nodes -subj /CN=app -out sp.crt -keyout sp.key
//	APP_URI=http://localhost:4000 SAML_IDP_METADATA=https://idp.example/metadata \
//	    SAML_SP_KEY=sp.key SAML_SP_CERT=sp.crt go run ./examples/saml -listen 127.0.0.1:4000
package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"embed"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"html"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"time"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authn/saml"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

//go:embed policy
var policyFiles embed.FS

// config is the example's configuration, read from the environment.
type config struct {
	AppURI      string
	IDPMetadata []byte
	Key         crypto.Signer
	Certificate *x509.Certificate
	SessionKey  []byte
}

// configFromEnv reads the configuration through getenv (os.Getenv),
// fetching the IdP's metadata when it is given as a URL.
func configFromEnv(ctx context.Context, getenv func(string) string) (config, error) {
	cfg := config{AppURI: getenv("APP_URI")}
	for _, name := range []string{"APP_URI", "SAML_IDP_METADATA", "SAML_SP_KEY", "SAML_SP_CERT"} {
		if getenv(name) == "" {
			return cfg, fmt.Errorf("%s is not set", name)
		}
	}
	var err error
	if cfg.IDPMetadata, err = saml.ReadMetadata(ctx, nil, getenv("SAML_IDP_METADATA")); err != nil {
		return cfg, fmt.Errorf("SAML_IDP_METADATA: %w", err)
	}
	if cfg.Key, cfg.Certificate, err = saml.LoadKeyPair(getenv("SAML_SP_KEY"), getenv("SAML_SP_CERT")); err != nil {
		return cfg, fmt.Errorf("SAML_SP_KEY, SAML_SP_CERT: %w", err)
	}
	if k := getenv("SESSION_KEY"); k != "" {
		if cfg.SessionKey, err = hex.DecodeString(k); err != nil {
			return cfg, fmt.Errorf("SESSION_KEY: not hex: %w", err)
		}
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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	cfg, err := configFromEnv(ctx, os.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on http://%s; register %s/saml/metadata at the IdP", ln.Addr(), cfg.AppURI)
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

func newHandler(ctx context.Context, cfg config) (http.Handler, error) {
	p, err := policy.LoadFS(policyFiles, "policy")
	if err != nil {
		return nil, err
	}
	engine, err := policy.New(ctx, policy.Config{}, p)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(cfg.AppURI)
	if err != nil {
		return nil, fmt.Errorf("APP_URI: %w", err)
	}
	sp, err := saml.New(saml.Config{
		IDPMetadata: cfg.IDPMetadata,
		Key:         cfg.Key,
		Certificate: cfg.Certificate,
		SessionConfig: authn.SessionConfig{
			AppURI:     cfg.AppURI,
			CookieKeys: [][]byte{cfg.SessionKey},
			// Refused by saml.New unless APP_URI is http on a loopback host.
			InsecureCookies: u.Scheme == "http",
		},
	})
	if err != nil {
		return nil, err
	}
	guard, err := authz.New(authz.Config{Authenticator: sp, Evaluator: engine})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /finance/{report}", func(w http.ResponseWriter, r *http.Request) {
		res, _ := authz.FromContext(r.Context())
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<p id=\"report\">finance report %s for %s</p>\n", html.EscapeString(r.PathValue("report")), html.EscapeString(res.Identity.Subject))
	})
	// The guard mounts the service provider's routes (/saml/metadata,
	// /saml/acs, /saml/logout) and loads sessions before authorizing.
	return guard.Handler(mux), nil
}
