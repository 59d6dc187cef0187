// Command graphql protects a GraphQL endpoint with a policy that reads each
// operation of the request, as fastapi-opa's GraphQLInjectable allows:
// authz.GraphQLEnricher parses the body and adds input.gql_info, and the
// fastapi-opa input layout keeps such a policy unchanged.
//
//	go run ./examples/graphql
//	curl -H 'X-API-Key: staff-key-01234567890' -d '{"query": "{ employees { name } }"}' localhost:8000/graphql
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
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

func newHandler(ctx context.Context) (http.Handler, error) {
	p, err := policy.LoadFS(policyFiles, "policy")
	if err != nil {
		return nil, err
	}
	engine, err := policy.New(ctx, policy.Config{}, p)
	if err != nil {
		return nil, err
	}
	keys, err := authn.NewAPIKeys(authn.APIKeyConfig{Keys: []authn.APIKey{
		{Key: "staff-key-01234567890", Subject: "stu", Claims: map[string]any{"user": "stu", "groups": []any{"staff"}}},
		{Key: "hr-key-0123456789abcd", Subject: "hana", Claims: map[string]any{"user": "hana", "groups": []any{"staff", "hr"}}},
	}})
	if err != nil {
		return nil, err
	}
	guard, err := authz.New(authz.Config{
		Authenticator: keys,
		Evaluator:     engine,
		Layout:        authz.LayoutFastAPIOPA,
		Enrichers:     []authz.Enricher{authz.GraphQLEnricher("gql_info")},
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /graphql", serveGraphQL)
	return guard.Handler(mux), nil
}

// serveGraphQL stands for a real GraphQL server (gqlgen, graphql-go, ...):
// it sees the whole body, although the enricher read it first.
func serveGraphQL(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"data": {}, "received": %d}`+"\n", len(body))
}
