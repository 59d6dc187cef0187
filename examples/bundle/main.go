// Command bundle protects a net/http service with policy from an OPA bundle:
// a directory or .tar.gz as `opa build` makes it, or the URL of a bundle
// server, polled for new revisions. The example's bundle directory holds a
// manifest, a policy and the data it reads.
//
//	go run ./examples/bundle -bundle examples/bundle/bundle
//	go run ./examples/bundle -bundle https://bundles.example/authz.tar.gz
//	curl -H 'X-API-Key: viewer-key-0123456789' localhost:8000/orders
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/bundles"
	"github.com/regoguard/regoguard/policy"
)

func main() {
	addr := flag.String("listen", "127.0.0.1:8000", "address to listen on")
	bundle := flag.String("bundle", "examples/bundle/bundle", "bundle directory, .tar.gz file or http(s) URL")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on http://%s", ln.Addr())
	if err := run(ctx, ln, *bundle); err != nil {
		log.Fatal(err)
	}
}

// run serves the protected application on ln until ctx is done, with the
// policy of the bundle at pathOrURL.
func run(ctx context.Context, ln net.Listener, pathOrURL string) error {
	engine, mgr, err := startBundle(ctx, pathOrURL)
	if err != nil {
		return err
	}
	defer mgr.Stop(context.Background())
	handler, err := newHandler(engine)
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

// startBundle activates the bundle into a new engine. Until the first
// activation the engine refuses to evaluate, so requests fail closed (503);
// a remote bundle keeps being polled in the background.
func startBundle(ctx context.Context, pathOrURL string) (*policy.Engine, *bundles.Manager, error) {
	engine, err := policy.New(ctx, policy.Config{}, nil)
	if err != nil {
		return nil, nil, err
	}
	mgr, err := bundles.New(bundles.Config{
		Engine:  engine,
		Bundles: []bundles.Source{bundles.SourceFor("authz", pathOrURL)},
	})
	if err != nil {
		return nil, nil, err
	}
	if err := mgr.Start(ctx); err != nil {
		mgr.Stop(context.Background())
		return nil, nil, fmt.Errorf("bundle %s: %w", pathOrURL, err)
	}
	slog.Info("bundle", "location", pathOrURL, "ready", mgr.Ready(), "revision", engine.Revision())
	return engine, mgr, nil
}

func newHandler(engine *policy.Engine) (http.Handler, error) {
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{
		{Key: "viewer-key-0123456789", Subject: "vic", Claims: map[string]any{"roles": []any{"viewer"}}},
		{Key: "clerk-key-01234567890", Subject: "cleo", Claims: map[string]any{"roles": []any{"clerk"}}},
	}})
	if err != nil {
		return nil, err
	}
	guard, err := authz.New(authz.Config{Authenticator: keys, Evaluator: engine})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders", func(w http.ResponseWriter, r *http.Request) {
		res, _ := authz.FromContext(r.Context())
		fmt.Fprintf(w, "orders (policy revision %s)\n", res.Decision.Revision)
	})
	mux.HandleFunc("POST /orders", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintln(w, "order placed")
	})
	return guard.Handler(mux), nil
}
