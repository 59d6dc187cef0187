package policy_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/policy"
)

// A policy with a data document looked up by a key from the input. The
// default store, StoreFlat, holds the data compactly and converts only the
// entry a decision reads; StoreReadOptimized converts it all once, for
// policies that iterate over much of their data.
func ExampleStore() {
	dir, err := os.MkdirTemp("", "example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	files := map[string]string{
		"authz.rego": `package httpapi.authz

default allow := false

allow if input.user in data.acl.documents[input.doc].readers
`,
		"acl/data.json": `{"documents": {"d1": {"readers": ["bob"]}, "d2": {"readers": ["ann"]}}}`,
	}
	for name, src := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			log.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
			log.Fatal(err)
		}
	}

	p, err := policy.LoadFiles(dir)
	if err != nil {
		log.Fatal(err)
	}
	engine, err := policy.New(context.Background(), policy.Config{Store: policy.StoreFlat}, p)
	if err != nil {
		log.Fatal(err)
	}
	input := ast.NewObject(
		ast.Item(ast.StringTerm("user"), ast.StringTerm("bob")),
		ast.Item(ast.StringTerm("doc"), ast.StringTerm("d1")),
	)
	d, err := engine.Eval(context.Background(), input)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Allow)
	// Output: true
}
