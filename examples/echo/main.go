// Command echo protects an Echo server with regoguard. Echo adapts standard
// net/http middleware itself: e.Use(echo.WrapMiddleware(guard.Handler)).
//
//	go run ./examples/echo
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

	"github.com/labstack/echo/v4"

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
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Use(echo.WrapMiddleware(guard.Handler))
	e.GET("/healthz", func(c echo.Context) error {
		return c.String(http.StatusOK, "ok\n")
	})
	e.GET("/notes/:id", func(c echo.Context) error {
		res, _ := authz.FromContext(c.Request().Context())
		return c.String(http.StatusOK, fmt.Sprintf("note %s for %s\n", c.Param("id"), res.Identity.Subject))
	})
	e.POST("/notes/", func(c echo.Context) error {
		return c.String(http.StatusCreated, "note saved\n")
	})
	return e, nil
}
