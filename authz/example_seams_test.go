package authz_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
	"github.com/regoguard/regoguard/policy"
)

// exampleUser trusts a header, for the examples only.
var exampleUser = authn.AuthenticatorFunc(func(r *http.Request) (*authn.Identity, error) {
	if u := r.Header.Get("X-Example-User"); u != "" {
		return &authn.Identity{Subject: u, Method: authn.MethodAPIKey}, nil
	}
	return nil, authn.ErrNoCredential
})

// A Cache in front of the engine keys each decision on the policy revision
// and on the input fields that revision reads: requests that differ only
// elsewhere (here the client's port) share one entry.
func ExampleCache() {
	engine, err := policy.New(context.Background(), policy.Config{}, policy.MustParse(map[string]string{"authz.rego": `
package httpapi.authz

allow if input.method == "GET"
`}, nil))
	if err != nil {
		log.Fatal(err)
	}
	cache, err := authz.NewCache(engine, authz.CacheConfig{Size: 1000})
	if err != nil {
		log.Fatal(err)
	}
	guard, err := authz.New(authz.Config{Authenticator: exampleUser, Evaluator: cache})
	if err != nil {
		log.Fatal(err)
	}
	handler := guard.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for port := range 3 {
		r := httptest.NewRequest("GET", "/orders", nil)
		r.RemoteAddr = fmt.Sprintf("192.0.2.1:%d", 50000+port)
		r.Header.Set("X-Example-User", "alice")
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Println(w.Code)
	}
	fmt.Println("cached decisions:", cache.Len())

	// A key the policy outgrows is refused, naming what it leaves out.
	_, err = authz.NewCache(engine, authz.CacheConfig{KeyFields: []string{"path"}})
	fmt.Println(err != nil && strings.Contains(err.Error(), "reads: method"))
	// Output:
	// 200
	// 200
	// 200
	// cached decisions: 1
	// true
}

// A Fallback asks its Secondary when the Primary cannot decide: here an
// engine whose policy has not arrived yet (a bundle still downloading),
// with a second engine (in production, often a remote OPA) behind it.
func ExampleFallback() {
	ctx := context.Background()
	local, err := policy.New(ctx, policy.Config{}, nil) // no policy yet
	if err != nil {
		log.Fatal(err)
	}
	backup, err := policy.New(ctx, policy.Config{}, policy.MustParse(map[string]string{"backup.rego": "package httpapi.authz\nallow := false\n"}, nil))
	if err != nil {
		log.Fatal(err)
	}
	fb := &authz.Fallback{Primary: local, Secondary: backup, OnFallback: func(err error) {
		fmt.Println("fallback:", err)
	}}
	input := ast.NewObject(ast.Item(ast.StringTerm("method"), ast.StringTerm("GET")))

	d, err := fb.Eval(ctx, input)
	fmt.Println(d.Allow, err)

	if err := local.Load(ctx, policy.MustParse(map[string]string{"authz.rego": "package httpapi.authz\nallow := true\n"}, nil)); err != nil {
		log.Fatal(err)
	}
	d, err = fb.Eval(ctx, input)
	fmt.Println(d.Allow, err)
	// Output:
	// fallback: policy: no policy loaded
	// false <nil>
	// true <nil>
}

// GraphQLEnricher puts the operations of a GraphQL body in the input, so
// that a policy can refuse mutations to readers.
func ExampleGraphQLEnricher() {
	engine, err := policy.New(context.Background(), policy.Config{}, policy.MustParse(map[string]string{"authz.rego": `
package httpapi.authz

allow if every op in input.gql_info { op.operation == "query" }

allow if input.user.sub == "admin"
`}, nil))
	if err != nil {
		log.Fatal(err)
	}
	guard, err := authz.New(authz.Config{Authenticator: exampleUser, Evaluator: engine,
		Enrichers: []authz.Enricher{authz.GraphQLEnricher("")}})
	if err != nil {
		log.Fatal(err)
	}
	handler := guard.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	for _, c := range []struct{ user, query string }{
		{"reader", `query GetUser { user(id: 1) { name } }`},
		{"reader", `mutation { deleteUser(id: 1) }`},
		{"admin", `mutation { deleteUser(id: 1) }`},
	} {
		body := fmt.Sprintf(`{"query": %q}`, c.query)
		r := httptest.NewRequest("POST", "/graphql", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Example-User", c.user)
		w := httptest.NewRecorder()
		handler.ServeHTTP(w, r)
		fmt.Println(c.user, strings.Fields(c.query)[0], w.Code)
	}
	// Output:
	// reader query 200
	// reader mutation 403
	// admin mutation 200
}

// decisionCounter is a wrapper of one's own: it counts decisions. It embeds
// the engine, so it is a Planner too (the middleware builds only the fields
// the policy reads behind it, and a Cache in front still sees revisions),
// and its own Eval is what the middleware calls: embedding cannot skip it.
type decisionCounter struct {
	*policy.Engine
	count atomic.Int64
}

func (r *decisionCounter) Eval(ctx context.Context, input ast.Value) (policy.Decision, error) {
	r.count.Add(1)
	fmt.Println("the policy is given", input)
	return r.Engine.Eval(ctx, input)
}

func ExamplePlanner() {
	engine, err := policy.New(context.Background(), policy.Config{}, policy.MustParse(map[string]string{"authz.rego": `
package httpapi.authz

allow if input.user.sub == "alice"
`}, nil))
	if err != nil {
		log.Fatal(err)
	}
	rec := &decisionCounter{Engine: engine}
	guard, err := authz.New(authz.Config{Authenticator: exampleUser, Evaluator: rec})
	if err != nil {
		log.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/orders?page=2", nil)
	r.Header.Set("X-Example-User", "alice")
	w := httptest.NewRecorder()
	guard.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).ServeHTTP(w, r)
	fmt.Println(w.Code, rec.count.Load())
	// Output:
	// the policy is given {"user": {"sub": "alice"}}
	// 200 1
}
