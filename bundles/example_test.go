package bundles_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/bundles"
	"github.com/regoguard/regoguard/policy"
)

func Example() {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)

	// A bundle directory as `opa build` takes it; a .tar.gz works the same,
	// and so does a URL (Source.URL, or Source.Service with credentials).
	dir, err := os.MkdirTemp("", "bundle")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	files := map[string]string{
		".manifest":          `{"revision": "2026-11-29.1", "roots": ["httpapi"]}`,
		"httpapi/authz.rego": "package httpapi.authz\n\ndefault allow := false\n\nallow if input.method == \"GET\"\n",
	}
	for name, content := range files {
		_ = os.MkdirAll(filepath.Dir(filepath.Join(dir, name)), 0o700)
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			log.Fatal(err)
		}
	}

	engine, err := policy.New(context.Background(), policy.Config{Decision: "httpapi/authz/allow", Logger: quiet}, nil)
	if err != nil {
		log.Fatal(err)
	}
	m, err := bundles.New(bundles.Config{
		Engine:  engine,
		Bundles: []bundles.Source{bundles.SourceFor("authz", dir)},
		Logger:  quiet,
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		log.Fatal(err)
	}
	defer m.Stop(ctx)

	d, err := engine.Eval(ctx, ast.NewObject(ast.Item(ast.StringTerm("method"), ast.StringTerm("GET"))))
	if err != nil {
		log.Fatal(err)
	}
	st := m.Status()
	fmt.Println(d.Allow, d.Revision, st.Ready, st.Bundles[0].Revision)
	// Output: true 2026-11-29.1 true 2026-11-29.1
}
