package filter

import (
	"context"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/regoguard/regoguard/policy"
)

const benchRules = `include if input.docs.owner == input.user
include if { input.docs.public; not input.docs.archived }
include if { some d in data.depts[input.user]; input.docs.dept == d }
include if startswith(input.docs.title, "shared/")`

func benchCompiler(b *testing.B, size int) *Compiler {
	p, err := policy.Parse(map[string]string{"filters.rego": "package filters\n\n" + benchRules + "\n"}, semanticData)
	if err != nil {
		b.Fatal(err)
	}
	e, err := policy.New(context.Background(), policy.Config{Decision: "data.filters", Logger: discardLogger()}, p)
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(e, Config{Query: "data.filters.include", Unknowns: []string{"input.docs"}, CacheSize: size})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkCompile compares a cache miss (partial evaluation and
// translation) with a cached plan, both rendered as parameterized SQL.
func BenchmarkCompile(b *testing.B) {
	ctx := context.Background()
	input := ast.MustParseTerm(`{"user": "alice", "method": "GET", "path": ["docs"]}`).Value
	for _, bc := range []struct {
		name string
		size int
	}{{"miss", -1}, {"cached", 0}} {
		c := benchCompiler(b, bc.size)
		for _, d := range []Dialect{PostgreSQL, SQLite} {
			b.Run(bc.name+"/"+string(d), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					f, err := c.Compile(ctx, input)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := f.SQL(d, SQLOptions{Parameterized: true}); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
