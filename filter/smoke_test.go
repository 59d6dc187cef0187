package filter

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/policy"
)

func TestSmoke(t *testing.T) {
	src := `package filters
include if input.docs.owner == input.user
include if { input.docs.public; not input.docs.archived }
include if startswith(input.docs.title, "a_b%")
include if not helper
helper if input.docs.dept in {"hr", "it"}
`
	p := policy.MustParse(map[string]string{"f.rego": src}, nil)
	e, err := policy.New(context.Background(), policy.Config{Decision: "data.filters"}, p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(e, Config{Query: "data.filters.include", Unknowns: []string{"input.docs"}})
	if err != nil {
		t.Fatal(err)
	}
	f, err := c.Compile(context.Background(), ast.MustParseTerm(`{"user": "alice"}`).Value)
	if err != nil {
		t.Fatal(err)
	}
	t.Log(f.String())
	for _, d := range []Dialect{PostgreSQL, MySQL, SQLite, SQLServer} {
		for _, par := range []bool{false, true} {
			q, err := f.SQL(d, SQLOptions{Parameterized: par})
			t.Log(d, q.Where, q.Args, err)
		}
	}
	for _, form := range []UCASTForm{UCASTAll, UCASTMinimal} {
		b, err := f.Response(Target{"ucast", string(form)}, ResponseOptions{})
		t.Log(string(b), err)
	}
}
