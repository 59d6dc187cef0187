package policy_test

import (
	"context"
	"fmt"
	"log"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/policy"
)

func Example() {
	// Policies usually come from files (policy.LoadFiles) or an embedded
	// directory (policy.LoadFS); a string keeps the example self-contained.
	p, err := policy.Parse(map[string]string{"authz.rego": `
package httpapi.authz

default allow := false

allow if input.method == "GET"

allow if "admin" in input.user.claims.groups

reason := "read-only unless admin" if not allow
`}, nil)
	if err != nil {
		log.Fatal(err)
	}

	// Compile once, for the default decision data.httpapi.authz.
	engine, err := policy.New(context.Background(), policy.Config{}, p)
	if err != nil {
		log.Fatal(err)
	}

	// Build the input as an OPA value: no JSON round trip per request.
	input := ast.NewObject(
		ast.Item(ast.StringTerm("method"), ast.StringTerm("DELETE")),
		ast.Item(ast.StringTerm("user"), ast.ObjectTerm(
			ast.Item(ast.StringTerm("claims"), ast.ObjectTerm(
				ast.Item(ast.StringTerm("groups"), ast.ArrayTerm(ast.StringTerm("staff"))),
			)),
		)),
	)
	d, err := engine.Eval(context.Background(), input)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Allow, d.Reason)
	// Output: false read-only unless admin
}

func ExampleEngine_Load() {
	ctx := context.Background()
	engine, err := policy.New(ctx, policy.Config{Decision: "app/allow"}, nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := engine.Load(ctx, policy.MustParse(map[string]string{"app.rego": "package app\nallow := true\n"}, nil)); err != nil {
		log.Fatal(err)
	}

	// A broken policy is refused with its file, line and column, and the
	// working one keeps serving.
	broken, err := policy.Parse(map[string]string{"app.rego": "package app\n\nallow if input.x = = 1\n"}, nil)
	fmt.Println(broken == nil, err)

	d, _ := engine.Eval(ctx, ast.NewObject())
	fmt.Println(d.Allow)
	// Output:
	// true policy: app.rego:3:20: rego_parse_error: unexpected eq token
	// true
}

// A Plan tells a caller what to build of the input: only what the
// revision being served reads, down to single claims.
func ExampleEngine_Plan() {
	engine, err := policy.New(context.Background(), policy.Config{}, policy.MustParse(map[string]string{"authz.rego": `
package httpapi.authz

allow if input.method == "GET"

allow if "admin" in input.user.claims.groups
`}, nil))
	if err != nil {
		log.Fatal(err)
	}
	s, err := engine.Plan()
	if err != nil {
		log.Fatal(err)
	}
	claims := s.Fields.Under("user").Under("claims")
	fmt.Println(s.Fields.Reads("method"), s.Fields.Reads("headers"), claims.Reads("groups"), claims.Reads("email"))

	d, err := engine.Eval(context.Background(), ast.NewObject(ast.Item(ast.StringTerm("method"), ast.StringTerm("GET"))))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(d.Allow)
	// Output:
	// true false true false
	// true
}
