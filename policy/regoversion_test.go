package policy_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/policy"
)

// fastapiV0 is a policy as fastapi-opa users write it: Rego v0, no if, no
// contains, a partial set with brackets.
const fastapiV0 = `package httpapi.authz

default allow = false

allow {
	input.request_method == "GET"
	admins[input.sub]
}

admins[name] {
	name := data.admins[_]
}

reason = "admins only" {
	not allow
}
`

func TestRegoV0PolicyLoadsAndDecidesWithTheOption(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(fastapiV0), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data.json"), []byte(`{"admins": ["alice"]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// Read as v1 (the default): refused, saying why and what to do.
	_, err := policy.LoadFiles(dir)
	var v0 *policy.V0SyntaxError
	if !errors.As(err, &v0) {
		t.Fatalf("v0 policy read as v1: error %v, want a V0SyntaxError", err)
	}
	for _, want := range []string{"Rego v0", "opa fmt --v0-v1 -w " + filepath.Join(dir, "authz.rego"), "--rego-version v0"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}

	// Read and compiled as v0: decides as OPA 0.x would.
	p, err := policy.Loader{RegoVersion: ast.RegoV0}.LoadFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, err := policy.New(ctx, policy.Config{RegoVersion: ast.RegoV0}, p)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		input  string
		allow  bool
		reason string
	}{
		{`{"request_method": "GET", "sub": "alice"}`, true, ""},
		{`{"request_method": "GET", "sub": "bob"}`, false, "admins only"},
	} {
		d, err := e.Eval(ctx, ast.MustParseTerm(c.input).Value)
		if err != nil || d.Allow != c.allow || d.Reason != c.reason {
			t.Errorf("%s: %+v, %v", c.input, d, err)
		}
	}
	// A reload reads the files as v0 too.
	if err := e.ReloadFiles(ctx, dir); err != nil {
		t.Errorf("reload of a v0 policy: %v", err)
	}
}

func TestRegoV1ErrorThatIsNotV0StaysAsItIs(t *testing.T) {
	_, err := policy.Parse(map[string]string{"p.rego": "package p\n\nallow if {\n"}, nil)
	var v0 *policy.V0SyntaxError
	if err == nil || errors.As(err, &v0) {
		t.Errorf("a broken v1 policy: %v, want a plain parse error", err)
	}
	_, err = policy.Parse(map[string]string{"p.rego": "package p\n\nallow { true }\n"}, nil)
	if !errors.As(err, &v0) {
		t.Errorf("Parse of v0 syntax: %v, want a V0SyntaxError", err)
	}
}
