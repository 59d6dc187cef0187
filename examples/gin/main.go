// Command gin protects a Gin engine with regoguard. Gin middleware is a
// gin.HandlerFunc, so a five-line adapter (middleware, below) runs the guard
// and continues the Gin chain only when the guard lets the request through.
//
//	go run ./examples/gin
//	curl -H 'X-API-Key: reader-key-0123456789' localhost:8000/notes/7
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

//go:embed policy
var policyFiles embed.FS

func main() {
	addr := flag.String("listen", "127.0.0.1:8000", "address to listen on")
	flag.Parse()
	gin.SetMode(gin.ReleaseMode)
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

// middleware adapts a net/http middleware such as authz.Middleware.Handler
// to Gin: the request continues down the Gin chain, with the context the
// guard gave it, only if the guard called its next handler; otherwise the
// guard has written the refusal and the chain is aborted.
func middleware(m func(http.Handler) http.Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		passed := false
		m(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
			passed = true
			c.Request = r
			c.Next()
		})).ServeHTTP(c.Writer, c.Request)
		if !passed {
			c.Abort()
		}
	}
}

func newHandler(ctx context.Context) (http.Handler, error) {
	guard, err := newGuard(ctx)
	if err != nil {
		return nil, err
	}
	r := gin.New()
	r.Use(gin.Recovery(), middleware(guard.Handler))
	r.GET("/healthz", func(c *gin.Context) {
		c.String(http.StatusOK, "ok\n")
	})
	r.GET("/notes/:id", func(c *gin.Context) {
		res, _ := authz.FromContext(c.Request.Context())
		c.String(http.StatusOK, "note %s for %s\n", c.Param("id"), res.Identity.Subject)
	})
	r.POST("/notes/", func(c *gin.Context) {
		c.String(http.StatusCreated, "note saved\n")
	})
	return r, nil
}
