// Command remote protects a net/http service with decisions from a remote OPA
// server, as fastapi-opa does with opa_host, and optionally falls back to the
// same policy embedded in the binary while that server cannot answer.
//
//	opa run --server --skip-version-check examples/remote/policy &
//	OPA_HOST=http://127.0.0.1:8181 go run ./examples/remote             # every decision asked of OPA
//	OPA_HOST=http://127.0.0.1:8181 go run ./examples/remote -fallback   # the embedded policy when OPA fails
//	curl -H 'X-API-Key: finance-key-0123456789' localhost:8000/finance/q3
//
// The input uses fastapi-opa's layout (authz.LayoutFastAPIOPA), so a policy
// written for fastapi-opa runs unchanged on the OPA server and in-process.
package main

import (
	"context"
	"embed"
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
	"github.com/regoguard/regoguard/policy"
)

//go:embed policy
var policyFiles embed.FS

// config is what the example is started with.
type config struct {
	// OPAHost is the OPA server, fastapi-opa's opa_host (env OPA_HOST).
	OPAHost string
	// Fallback evaluates the embedded policy when the OPA server fails.
	Fallback bool
}

func main() {
	cfg := config{OPAHost: os.Getenv("OPA_HOST")}
	addr := flag.String("listen", "127.0.0.1:8000", "address to listen on")
	flag.StringVar(&cfg.OPAHost, "opa-host", cfg.OPAHost, "OPA server URL (default $OPA_HOST)")
	flag.BoolVar(&cfg.Fallback, "fallback", false, "fall back to the embedded policy when the OPA server fails")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on http://%s, asking OPA at %s", ln.Addr(), cfg.OPAHost)
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

// evaluator asks the OPA server and, with cfg.Fallback, the embedded policy
// when the server fails (down, slow, or answering an error). A deny from
// the server is an answer: it is never retried.
func evaluator(ctx context.Context, cfg config) (authz.Evaluator, error) {
	if cfg.OPAHost == "" {
		return nil, errors.New("no OPA server: set OPA_HOST or -opa-host")
	}
	remote, err := authz.NewRemote(authz.RemoteConfig{URL: cfg.OPAHost, Timeout: time.Second})
	if err != nil {
		return nil, err
	}
	if !cfg.Fallback {
		return remote, nil
	}
	p, err := policy.LoadFS(policyFiles, "policy")
	if err != nil {
		return nil, err
	}
	engine, err := policy.New(ctx, policy.Config{}, p)
	if err != nil {
		return nil, err
	}
	return &authz.Fallback{
		Primary:   remote,
		Secondary: engine,
		OnFallback: func(err error) {
			slog.Warn("OPA server failed; the embedded policy decided", "err", err)
		},
	}, nil
}

func newHandler(ctx context.Context, cfg config) (http.Handler, error) {
	eval, err := evaluator(ctx, cfg)
	if err != nil {
		return nil, err
	}
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{
		{Key: "finance-key-0123456789", Subject: "fay", Claims: map[string]any{"user": "fay", "groups": []any{"finance"}}},
		{Key: "sales-key-01234567890", Subject: "sam", Claims: map[string]any{"user": "sam", "groups": []any{"sales"}}},
	}})
	if err != nil {
		return nil, err
	}
	guard, err := authz.New(authz.Config{
		Authenticator: keys,
		Evaluator:     eval,
		Layout:        authz.LayoutFastAPIOPA,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /finance/{report}", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "finance report %s\n", r.PathValue("report"))
	})
	mux.HandleFunc("GET /public", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, "public page")
	})
	return guard.Handler(mux), nil
}
