package policy_test

import (
	"context"
	"fmt"
	"log"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/policy"
)

// A policy written for OPA before 1.0 (Rego v0), as most fastapi-opa
// policies are, loaded and compiled with OPA's v0 compatibility.
func ExampleLoader() {
	v0 := policy.Loader{RegoVersion: ast.RegoV0}
	p, err := v0.Parse(map[string]string{"authz.rego": `package httpapi.authz

default allow = false

allow {
	input.request_method == "GET"
}
`}, nil)
	if err != nil {
		log.Fatal(err)
	}
	e, err := policy.New(context.Background(), policy.Config{RegoVersion: ast.RegoV0}, p)
	if err != nil {
		log.Fatal(err)
	}
	d, _ := e.Eval(context.Background(), ast.MustParseTerm(`{"request_method": "GET"}`).Value)
	fmt.Println(d.Allow)

	// Read as Rego v1 (the default), the same text is refused with advice.
	_, err = policy.Parse(map[string]string{"authz.rego": "package httpapi.authz\n\nallow { true }\n"}, nil)
	fmt.Println(err != nil)
	// Output:
	// true
	// true
}
