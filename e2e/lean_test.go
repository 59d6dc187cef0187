package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// A consumer of the library pays for what it imports, and no more: issue
// #15's targets, measured the way a consumer sees them, in fresh modules
// that use this tree through a replace directive. Everything comes from the
// module cache (GOPROXY=off inside .ci/run's network namespace).
func TestConsumerModuleGraphIsLean(t *testing.T) {
	if testing.Short() {
		t.Skip("runs go mod tidy twice")
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	consumer := newConsumer(t, root, `package main

import (
	"context"
	"net/http"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

func main() {
	p, _ := policy.Parse(map[string]string{"p.rego": "package httpapi.authz\nallow := true"}, nil)
	engine, _ := policy.New(context.Background(), policy.Config{}, p)
	keys, _ := authn.NewAPIKeys(authn.APIKeyConfig{})
	guard, _ := authz.New(authz.Config{Authenticator: keys, Evaluator: engine})
	_ = http.ListenAndServe("127.0.0.1:0", guard.Handler(http.NotFoundHandler()))
}
`)
	opaOnly := newConsumer(t, root, `package main

import "github.com/open-policy-agent/opa/v1/rego"

func main() { _ = rego.New() }
`)
	withLib, withOPA := modules(t, consumer), modules(t, opaOnly)

	for _, heavy := range []string{"github.com/gin-gonic/gin", "github.com/labstack/echo", "github.com/go-chi/chi",
		"github.com/chromedp/", "github.com/zitadel/", "github.com/oauth2-proxy/mockoidc", "github.com/quic-go/",
		"go.mongodb.org/", "github.com/bytedance/sonic", "github.com/crewjam/saml", "github.com/redis/go-redis"} {
		for _, m := range withLib {
			if strings.HasPrefix(m, heavy) {
				t.Errorf("a consumer of policy, authn and authz has %s in its module graph", m)
			}
		}
	}
	var extra []string
	for _, m := range withLib {
		if !slices.Contains(withOPA, m) && m != "example.com/consumer" {
			extra = append(extra, m)
		}
	}
	t.Logf("modules: %d with policy, authn and authz; %d with OPA's v1/rego alone; more: %v", len(withLib), len(withOPA), extra)
	if len(extra) > 10 {
		t.Errorf("%d modules more than OPA's v1/rego alone (want at most 10): %v", len(extra), extra)
	}

	// An API-key-only program links no SAML, XML-signature, gRPC or
	// Prometheus package (metrics are opt-in, through prommetrics).
	deps := goCmd(t, consumer, "list", "-deps", ".")
	for _, heavy := range []string{"github.com/crewjam/saml", "github.com/russellhaering/goxmldsig", "github.com/beevik/etree",
		"google.golang.org/grpc", "github.com/regoguard/regoguard/grpcauthz", "github.com/prometheus/",
		"github.com/regoguard/regoguard/prommetrics"} {
		if strings.Contains(deps, heavy) {
			t.Errorf("an API-key program links %s", heavy)
		}
	}
}

// newConsumer writes a module named example.com/consumer holding main.go
// and tidies it against this tree.
func newConsumer(t *testing.T, root, main string) string {
	t.Helper()
	dir := t.TempDir()
	gomod := "module example.com/consumer\n\ngo 1.26.0\n\nrequire github.com/regoguard/regoguard v0.0.0\n\nreplace github.com/regoguard/regoguard => " + root + "\n"
	if !strings.Contains(main, "regoguard/regoguard") {
		gomod = "module example.com/consumer\n\ngo 1.26.0\n"
	}
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"go.mod": []byte(gomod), "go.sum": sum, "main.go": []byte(main)} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(main, "regoguard/regoguard") {
		goCmd(t, dir, "mod", "edit", "-require=github.com/open-policy-agent/opa@"+opaVersion(t, root))
	}
	goCmd(t, dir, "mod", "tidy")
	return dir
}

// opaVersion is the OPA version the library requires.
func opaVersion(t *testing.T, root string) string {
	t.Helper()
	out := goCmd(t, root, "list", "-m", "-f", "{{.Version}}", "github.com/open-policy-agent/opa")
	return strings.TrimSpace(out)
}

func modules(t *testing.T, dir string) []string {
	t.Helper()
	var paths []string
	for line := range strings.Lines(goCmd(t, dir, "list", "-m", "all")) {
		if f := strings.Fields(line); len(f) > 0 {
			paths = append(paths, f[0])
		}
	}
	return paths
}

func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}
