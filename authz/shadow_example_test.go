package authz_test

import (
	"context"
	"fmt"
	"log"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

// A candidate policy judges beside the live one; the answers stay the live
// policy's, and the disagreements are counted.
func ExampleNewShadow() {
	ctx := context.Background()
	compile := func(rule string) *policy.Engine {
		e, err := policy.New(ctx, policy.Config{}, policy.MustParse(map[string]string{"authz.rego": "package httpapi.authz\n\n" + rule}, nil))
		if err != nil {
			log.Fatal(err)
		}
		return e
	}
	live := compile(`allow if input.method == "GET"`)
	candidate := compile(`allow if input.method in {"GET", "HEAD"}`)

	shadow, err := authz.NewShadow(live, authz.ShadowConfig{Candidate: candidate, Sample: 1})
	if err != nil {
		log.Fatal(err)
	}
	// shadow is the Evaluator of authz.Config; here it is asked directly.
	for _, method := range []string{"GET", "HEAD", "POST"} {
		d, _ := shadow.Eval(ctx, ast.NewObject(ast.Item(ast.StringTerm("method"), ast.StringTerm(method))))
		fmt.Println(method, d.Allow)
	}
	_ = shadow.Close(ctx) // finish the comparisons
	st := shadow.Stats()
	fmt.Printf("agree %d, allow→deny %d, deny→allow %d\n", st.Agree, st.AllowToDeny, st.DenyToAllow)
	// Output:
	// GET true
	// HEAD false
	// POST false
	// agree 2, allow→deny 0, deny→allow 1
}
