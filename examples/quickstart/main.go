// Command quickstart is a plain net/http service protected by regoguard: a
// policy embedded in the binary, evaluated in-process, and API keys.
//
//	go run ./examples/quickstart
//	curl -H 'X-API-Key: reader-key-0123456789' localhost:8000/notes
package main

import (
	"context"
	"embed"
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
	if err := srv.Serve(ln); err != http.ErrServerClosed {
		return err
	}
	return nil
}

func newHandler(ctx context.Context) (http.Handler, error) {
	p, err := policy.LoadFS(policyFiles, "policy")
	if err != nil {
		return nil, err
	}
	engine, err := policy.New(ctx, policy.Config{}, p)
	if err != nil {
		return nil, err
	}
	// Keys would come from a file (authn.LoadAPIKeys) or the environment
	// (authn.APIKeysFromEnv); they are written here to keep the example whole.
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{
		{Key: "reader-key-0123456789", Subject: "rita", Claims: map[string]any{"roles": []any{"reader"}}},
		{Key: authn.HashAPIKey("editor-key-0123456789"), Subject: "ed", Claims: map[string]any{"roles": []any{"editor"}}},
	}})
	if err != nil {
		return nil, err
	}
	guard, err := authz.New(authz.Config{Authenticator: keys, Evaluator: engine, Logger: slog.Default()})
	if err != nil {
		return nil, err
	}

	mux := http.NewServeMux()
	mux.HandleFunc("GET /notes", func(w http.ResponseWriter, r *http.Request) {
		res, _ := authz.FromContext(r.Context())
		fmt.Fprintf(w, "notes for %s\n", res.Identity.Subject)
	})
	mux.HandleFunc("POST /notes", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusCreated)
		fmt.Fprintln(w, "note saved")
	})
	return guard.Handler(mux), nil
}
