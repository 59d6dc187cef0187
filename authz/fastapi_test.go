package authz_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/authn"
	"github.com/regoguard/regoguard/authz"
)

// A policy written for fastapi-opa gives the same decisions under the
// fastapi-opa input layout.
func TestFastAPIOPALayout(t *testing.T) {
	m, err := authz.New(authz.Config{
		Authenticator: testAuth,
		Evaluator:     engine(t, "testdata/fastapi"),
		Layout:        authz.LayoutFastAPIOPA,
		Enrichers:     []authz.Enricher{authz.GraphQLEnricher("")},
		DenyStatus:    http.StatusUnauthorized,
	})
	if err != nil {
		t.Fatal(err)
	}
	h := m.Handler(echo)
	cases := []struct {
		method, target, user, body string
		status                     int
	}{
		{"GET", "/finance/report", "ann;finance", "", 200},
		{"GET", "/finance/report", "bob;sales", "", 401},
		{"GET", "/public", "bob", "", 200},
		{"GET", "/public/more", "bob", "", 401},
		{"POST", "/graphql", "bob", `{"query": "query Q { me { id } }"}`, 200},
		{"POST", "/graphql", "bob", `{"query": "mutation M { drop }"}`, 401},
	}
	for _, c := range cases {
		r := request(c.method, c.target, c.user)
		if c.body != "" {
			r = httptest.NewRequest(c.method, c.target, strings.NewReader(c.body))
			r.Header.Set("X-Test-User", c.user)
			r.Header.Set("Content-Type", "application/json")
		}
		if res := do(t, h, r); res.status != c.status {
			t.Errorf("%s %s as %s: %d, want %d (%v)", c.method, c.target, c.user, res.status, c.status, res.body)
		}
	}
}

func TestFastAPIOPAInputShape(t *testing.T) {
	m, err := authz.New(authz.Config{Authenticator: testAuth, Evaluator: engine(t, "testdata/fastapi"), Layout: authz.LayoutFastAPIOPA})
	if err != nil {
		t.Fatal(err)
	}
	in, err := m.Input(request("GET", "/finance/q3/", "ann;finance"), mustIdentity(t, "ann;finance"))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"email":"ann@example.com","groups":["finance"],"request_method":"GET","request_path":["finance","q3",""]}`
	if got := jsonOf(t, in); got != want {
		t.Errorf("input %s\nwant  %s", got, want)
	}
	root, _ := m.Input(request("GET", "/", ""), nil)
	if got := jsonOf(t, root); got != `{"request_method":"GET","request_path":[""]}` {
		t.Errorf("input for / as anonymous: %s", got)
	}
}

func TestGraphQLEnricherShape(t *testing.T) {
	m, err := authz.New(authz.Config{
		Authenticator: testAuth, Evaluator: engine(t, "testdata/regoguard"),
		Enrichers: []authz.Enricher{authz.GraphQLEnricher("")},
	})
	if err != nil {
		t.Fatal(err)
	}
	query := `query GetUser($id: ID!, $tags: [String!]!, $grid: [[Int]]) {
		user(id: $id) { id profile { name } ...F }
		other
	}
	mutation { reset }
	fragment F on User { hidden }`
	body, _ := json.Marshal(map[string]any{"query": query})
	r := httptest.NewRequest("POST", "/graphql", strings.NewReader(string(body)))
	in, err := m.Input(r, mustIdentity(t, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	got := jsonOf(t, in.(interface{ Get(*ast.Term) *ast.Term }).Get(ast.StringTerm("gql_info")).Value)
	want := `[{"name":"GetUser","operation":"query","selection_set":[["user",["id","profile",["name"]],"other"]],"variables":{"grid":"[Int]","id":"ID","tags":"[String]"}},` +
		`{"name":"","operation":"mutation","selection_set":[["reset"]],"variables":{}}]`
	if got != want {
		t.Errorf("gql_info %s\nwant     %s", got, want)
	}

	for _, bad := range []string{`{"query": "query {"}`, `not json`} {
		h := m.Handler(echo)
		r := httptest.NewRequest("POST", "/graphql", strings.NewReader(bad))
		r.Header.Set("X-Test-User", "bob")
		res := do(t, h, r)
		if res.status != 400 || !strings.Contains(res.body["message"].(string), "GraphQL") {
			t.Errorf("body %q: %d %v, want 400 naming GraphQL", bad, res.status, res.body)
		}
	}
}

func TestEnricherSkipPatterns(t *testing.T) {
	e := authz.Enricher{Key: "tenant", Skip: []*regexp.Regexp{regexp.MustCompile("/health")},
		Func: func(r *http.Request, _ []byte) (any, error) { return r.Header.Get("X-Tenant"), nil }}
	m, err := authz.New(authz.Config{Authenticator: testAuth, Evaluator: engine(t, "testdata/regoguard"), Enrichers: []authz.Enricher{e}})
	if err != nil {
		t.Fatal(err)
	}
	r := request("GET", "/api", "bob")
	r.Header.Set("X-Tenant", "acme")
	in, _ := m.Input(r, nil)
	if got := in.(interface{ Get(*ast.Term) *ast.Term }).Get(ast.StringTerm("tenant")); got == nil || got.String() != `"acme"` {
		t.Errorf("tenant = %v, want \"acme\"", got)
	}
	in, _ = m.Input(request("GET", "/health", "bob"), nil)
	if got := in.(interface{ Get(*ast.Term) *ast.Term }).Get(ast.StringTerm("tenant")); got != nil {
		t.Errorf("enricher ran on a skipped path: %v", got)
	}
}

func mustIdentity(t testing.TB, user string) *authn.Identity {
	t.Helper()
	r := request("GET", "/", user)
	id, err := testAuth.Authenticate(r)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func jsonOf(t testing.TB, v ast.Value) string {
	t.Helper()
	j, err := ast.JSON(v)
	if err != nil {
		t.Fatal(err)
	}
	return mustJSON(t, j)
}
