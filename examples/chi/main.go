// Command chi protects a go-chi router with regoguard. chi middleware is
// func(http.Handler) http.Handler, so the guard's Handler method is used as
// it is: r.Use(guard.Handler).
//
//	go run ./examples/chi
//	curl -H 'X-API-Key: reader-key-0123456789' localhost:8000/notes/7
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

//go:embed policy
var policyFiles embed.FS

func main() {
	addr := flag.String("listen", "127.0.0.1:8000", "address to listen on")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("listening on http://%s", ln.Addr())
	if err := run(ctx, ln); err != nil {
		log.Fatal(err)
	}
}

// run serves the protected application on ln until ctx is done.
func run(ctx context.Context, ln net.Listener) error {
	handler, err := newHandler(ctx)
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

// newGuard builds the middleware: the embedded policy, evaluated in-process,
// and API keys.
func newGuard(ctx context.Context) (*authz.Middleware, error) {
	p, err := policy.LoadFS(policyFiles, "policy")
	if err != nil {
		return nil, err
	}
	engine, err := policy.New(ctx, policy.Config{}, p)
	if err != nil {
		return nil, err
	}
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{
		{Key: "reader-key-0123456789", Subject: "rita", Claims: map[string]any{"roles": []any{"reader"}}},
		{Key: "editor-key-0123456789", Subject: "ed", Claims: map[string]any{"roles": []any{"editor"}}},
	}})
	if err != nil {
		return nil, err
	}
	return authz.New(authz.Config{
		Authenticator: keys,
		Evaluator:     engine,
		Skip:          []authz.Skip{{Path: "/healthz", Methods: []string{http.MethodGet}}},
	})
}

func newHandler(ctx context.Context) (http.Handler, error) {
	guard, err := newGuard(ctx)
	if err != nil {
		return nil, err
	}
	r := chi.NewRouter()
	r.Use(guard.Handler)
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	r.Route("/notes", func(r chi.Router) {
		r.Get("/{id}", func(w http.ResponseWriter, r *http.Request) {
			res, _ := authz.FromContext(r.Context())
			fmt.Fprintf(w, "note %s for %s\n", chi.URLParam(r, "id"), res.Identity.Subject)
		})
		r.Post("/", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintln(w, "note saved")
		})
	})
	return r, nil
}
