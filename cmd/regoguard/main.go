// Command regoguard protects HTTP services with Open Policy Agent policies
// evaluated in-process.
//
// With no arguments it runs a demo on an embedded example policy.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/cmd/regoguard/demo"
	"github.com/regoguard/regoguard/policy"
)

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "regoguard:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	p, err := demo.Policy()
	if err != nil {
		return err
	}
	engine, err := policy.New(ctx, policy.Config{Logger: slog.New(slog.DiscardHandler)}, p)
	if err != nil {
		return err
	}
	fmt.Printf("demo policy %s, decision %s\n\n", engine.Revision(), engine.Decision())
	for _, c := range []string{
		`{"method": "GET", "path_segments": ["public", "hello"], "user": {"authenticated": false}}`,
		`{"method": "GET", "path_segments": ["api", "orders"], "user": {"authenticated": false}}`,
		`{"method": "GET", "path_segments": ["api", "orders"], "user": {"authenticated": true, "claims": {"groups": ["staff"]}}}`,
		`{"method": "DELETE", "path_segments": ["api", "orders"], "user": {"authenticated": true, "claims": {"groups": ["staff"]}}}`,
		`{"method": "DELETE", "path_segments": ["api", "orders"], "user": {"authenticated": true, "claims": {"groups": ["admin"]}}}`,
	} {
		in, err := ast.ParseTerm(c)
		if err != nil {
			return err
		}
		d, err := engine.Eval(ctx, in.Value)
		if err != nil {
			return err
		}
		fmt.Printf("allow=%-5v reason=%q\n  input %s\n", d.Allow, d.Reason, c)
	}
	return nil
}
