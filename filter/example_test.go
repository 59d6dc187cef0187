package filter_test

import (
	"context"
	"fmt"
	"log"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/filter"
	"github.com/regoguard/regoguard/policy"
)

func Example() {
	ctx := context.Background()
	p := policy.MustParse(map[string]string{"filters.rego": `package filters

include if input.docs.owner == input.user
include if {
	input.docs.public
	not input.docs.archived
}
`}, nil)
	engine, err := policy.New(ctx, policy.Config{Decision: "data.filters"}, p)
	if err != nil {
		log.Fatal(err)
	}
	c, err := filter.New(engine, filter.Config{Query: "data.filters.include", Unknowns: []string{"input.docs"}})
	if err != nil {
		log.Fatal(err)
	}
	f, err := c.Compile(ctx, ast.MustParseTerm(`{"user": "alice"}`).Value)
	if err != nil {
		log.Fatal(err)
	}
	q, err := f.SQL(filter.PostgreSQL, filter.SQLOptions{Parameterized: true})
	if err != nil {
		log.Fatal(err)
	}
	// db.QueryContext(ctx, "SELECT id, title FROM docs "+q.Where, q.Args...)
	fmt.Println(q.Where)
	fmt.Println(q.Args)
	// Output:
	// WHERE (docs.owner = $1 OR (docs.public = $2 AND (docs.archived IS NULL OR NOT (docs.archived = $3))))
	// [alice true true]
}

func ExampleFilter_Response() {
	ctx := context.Background()
	p := policy.MustParse(map[string]string{"filters.rego": `package filters

include if startswith(input.docs.title, input.prefix)
`}, nil)
	engine, err := policy.New(ctx, policy.Config{Decision: "data.filters"}, p)
	if err != nil {
		log.Fatal(err)
	}
	c, err := filter.New(engine, filter.Config{Query: "data.filters.include", Unknowns: []string{"input.docs"}})
	if err != nil {
		log.Fatal(err)
	}
	f, err := c.Compile(ctx, ast.MustParseTerm(`{"prefix": "Q3_"}`).Value)
	if err != nil {
		log.Fatal(err)
	}
	for _, target := range []string{"sql+sqlite", "application/vnd.opa.sql.postgresql+json", "ucast+all"} {
		t, err := filter.ParseTarget(target)
		if err != nil {
			log.Fatal(err)
		}
		body, err := f.Response(t, filter.ResponseOptions{})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(string(body))
	}
	// Output:
	// {"result":{"query":"WHERE instr(docs.title, 'Q3_') = 1"}}
	// {"result":{"query":"WHERE docs.title LIKE E'Q3\\\\_%'"}}
	// {"result":{"query":{"field":"docs.title","operator":"startswith","type":"field","value":"Q3_"}}}
}

func ExampleError() {
	ctx := context.Background()
	p := policy.MustParse(map[string]string{"filters.rego": `package filters

include if lower(input.docs.owner) == input.user
`}, nil)
	engine, err := policy.New(ctx, policy.Config{Decision: "data.filters"}, p)
	if err != nil {
		log.Fatal(err)
	}
	c, err := filter.New(engine, filter.Config{Query: "data.filters.include", Unknowns: []string{"input.docs"}})
	if err != nil {
		log.Fatal(err)
	}
	_, err = c.Compile(ctx, ast.MustParseTerm(`{"user": "alice"}`).Value)
	fmt.Println(err)
	// Output:
	// filter: data.filters.include: filters.rego:3:12: lower(input.docs.owner): lower on a field of the row cannot be translated into a filter (supported: ==, !=, <, <=, >, >=, in, startswith, endswith, contains)
}
