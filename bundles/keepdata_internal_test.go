package bundles

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/policy"
)

// TestSingleBundleDataNotKept: with one bundle the Manager does not keep
// the bundle's data as Go values once the engine serves it (the next
// activation replaces it whole); with several it keeps each bundle's, which
// the next activation of another one merges. Decisions read the data either
// way.
func TestSingleBundleDataNotKept(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name, content string) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("a/.manifest", `{"revision": "ra", "roots": ["httpapi"]}`)
	write("a/httpapi/authz.rego", "package httpapi.authz\n\nallow if input.user in data.httpapi.admins\n")
	write("a/httpapi/data.json", `{"admins": ["alice"]}`)
	write("b/.manifest", `{"revision": "rb", "roots": ["extra"]}`)
	write("b/extra/data.json", `{"x": 1}`)
	quietLog := slog.New(slog.NewTextHandler(io.Discard, nil))
	for _, srcs := range [][]Source{
		{SourceFor("a", filepath.Join(dir, "a"))},
		{SourceFor("a", filepath.Join(dir, "a")), SourceFor("b", filepath.Join(dir, "b"))},
	} {
		e, err := policy.New(ctx, policy.Config{Logger: quietLog, Decision: "httpapi/authz/allow"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		m, err := New(Config{Engine: e, Bundles: srcs, Logger: quietLog})
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Start(ctx); err != nil {
			t.Fatal(err)
		}
		if err := m.Trigger(ctx); err != nil { // a reactivation
			t.Fatal(err)
		}
		for user, want := range map[string]bool{"alice": true, "bob": false} {
			d, err := e.Eval(ctx, ast.MustParseTerm(`{"user": "`+user+`"}`).Value)
			if err != nil || d.Allow != want {
				t.Errorf("%d bundles: %s: %+v %v, want allow %v", len(srcs), user, d, err, want)
			}
		}
		m.mu.Lock()
		kept := m.have["a"].Data != nil
		m.mu.Unlock()
		if kept != (len(srcs) > 1) {
			t.Errorf("%d bundles: data kept = %v", len(srcs), kept)
		}
	}
}
